//! The SQLite store: schema, migrations and the statements the writer runs.
//!
//! Only the writer (see `writer/`) holds a connection that reads or writes
//! rows, so there is exactly one writer and every read-modify-write happens
//! inside its `BEGIN IMMEDIATE` transaction, never on a copy of the state
//! read earlier (two concurrent "-5 min" stay two). A second connection,
//! the [`Checkpointer`]'s, only copies the WAL back into the database file.
//! Text from clients is bound as parameters, never formatted into SQL.

use std::path::Path;

use anyhow::Context as _;
use pitboss_core::ops::{Actor, EventState, Role};
use pitboss_core::protocol::{AuditEntry, DeviceInfo, EventSummary};
use pitboss_core::{ClockState, EventDetails, Incident, Stats, Structure};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use rusqlite_migration::{Migrations, M};

use crate::auth::Session;

/// How hard SQLite works to keep a commit through a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// Every commit reaches the disk before it is acknowledged: survives the
    /// host laptop being unplugged. The default; group commit keeps it fast.
    #[default]
    Full,
    /// Survives a crash of the process but may lose the last commits on
    /// power loss. Faster.
    Normal,
}

impl Synchronous {
    pub fn parse(s: &str) -> Option<Synchronous> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Some(Synchronous::Full),
            "normal" => Some(Synchronous::Normal),
            _ => None,
        }
    }
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(
            r#"
        CREATE TABLE events (
            id TEXT PRIMARY KEY,
            details TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL,
            -- sequence number of the last accepted change
            seq INTEGER NOT NULL DEFAULT 0,
            -- changes up to and including this seq are no longer kept
            pruned_through INTEGER NOT NULL DEFAULT 0,
            clock TEXT NOT NULL,
            structure TEXT NOT NULL,
            stats TEXT NOT NULL,
            next_incident INTEGER NOT NULL DEFAULT 1
        );
        CREATE TABLE incidents (
            event_id TEXT NOT NULL REFERENCES events(id),
            id TEXT NOT NULL,
            table_label TEXT NOT NULL,
            kind TEXT NOT NULL,
            severity TEXT NOT NULL,
            status TEXT NOT NULL,
            note TEXT NOT NULL,
            created_by TEXT NOT NULL,
            lock_version INTEGER NOT NULL,
            created_at_ms INTEGER NOT NULL,
            updated_at_ms INTEGER NOT NULL,
            PRIMARY KEY (event_id, id)
        );
        CREATE TABLE changes (
            event_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            op_id TEXT NOT NULL,
            -- the exact frame broadcast, so a replay sends the same bytes
            frame TEXT NOT NULL,
            PRIMARY KEY (event_id, seq)
        ) WITHOUT ROWID;
        CREATE TABLE ops (
            op_id TEXT PRIMARY KEY,
            event_id TEXT NOT NULL,
            -- the op as first received, to refuse an op_id reused for another op
            request TEXT NOT NULL,
            -- the answer given, returned as-is to every retry
            outcome TEXT NOT NULL,
            at_ms INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,
            operator_id TEXT NOT NULL,
            name TEXT NOT NULL,
            device TEXT NOT NULL,
            role TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL
        );
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        "#,
        ),
        // Issue 6: who joined from where, revocation, and the audit trail.
        M::up(
            r#"
        ALTER TABLE sessions ADD COLUMN address TEXT NOT NULL DEFAULT '';
        ALTER TABLE sessions ADD COLUMN via TEXT NOT NULL DEFAULT 'join_code';
        ALTER TABLE sessions ADD COLUMN last_seen_ms INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE sessions ADD COLUMN revoked_at_ms INTEGER;
        CREATE INDEX sessions_operator ON sessions (operator_id);
        -- One row per accepted change, written in the change's transaction
        -- and never pruned with the change log: the floor's record.
        CREATE TABLE audit (
            event_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            op_id TEXT NOT NULL,
            at_ms INTEGER NOT NULL,
            operator_id TEXT NOT NULL,
            name TEXT NOT NULL,
            device TEXT NOT NULL,
            role TEXT NOT NULL,
            address TEXT NOT NULL,
            op TEXT NOT NULL,
            before TEXT NOT NULL,
            after TEXT NOT NULL,
            summary TEXT NOT NULL,
            incident_id TEXT,
            PRIMARY KEY (event_id, seq)
        ) WITHOUT ROWID;
        CREATE INDEX audit_incident ON audit (event_id, incident_id, seq);
        "#,
        ),
    ])
}

/// Opens (creating if needed) the store in `dir`, migrated to the latest schema.
pub fn open(dir: &Path, sync: Synchronous) -> anyhow::Result<Connection> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data folder {}", dir.display()))?;
    let path = dir.join("pitboss.db");
    let mut conn =
        Connection::open(&path).with_context(|| format!("cannot open store {}", path.display()))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(
        None,
        "synchronous",
        match sync {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        },
    )?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    migrations()
        .to_latest(&mut conn)
        .context("cannot migrate the store")?;
    Ok(conn)
}

/// Copies the write-ahead log back into the database file from a thread of
/// its own, so that commits seldom wait for a checkpoint.
///
/// Why: SQLite's automatic checkpoint runs inside the commit that takes the
/// log past 1,000 pages, writing the pages back and syncing the database
/// file before that commit returns, and changes are broadcast only after
/// their commit, so one op in every few hundred would reach the screens
/// milliseconds late. A passive checkpoint on another connection runs while the writer appends, and
/// SQLite starts the log over at the first write after one that caught up.
///
/// The automatic checkpoint stays on behind it. A steady storm of commits
/// never leaves a quiet moment for a checkpoint to catch up in, so without
/// it the log would never start over and would grow by every change; at
/// 1,000 pages the writer then checkpoints itself, and the log stays
/// bounded. At a venue's pace (one
/// change every few seconds, 50 a second at the most) this thread is always
/// first and the writer never pays.
pub struct Checkpointer {
    nudge: Option<std::sync::mpsc::SyncSender<()>>,
    commits: std::sync::Arc<std::sync::atomic::AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Commits between two nudges of the checkpointer: about 150 WAL pages at
/// one op per commit, well under SQLite's own 1,000-page trigger.
const COMMITS_PER_CHECKPOINT: u64 = 32;
/// A checkpoint also runs this long after the last one if anything was
/// committed since, so a quiet evening's last changes reach the database
/// file (and, with `synchronous = NORMAL`, the disk) within a second.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

impl Checkpointer {
    /// Starts the thread, on its own connection to `dir`'s store.
    pub fn start(dir: &Path) -> anyhow::Result<Checkpointer> {
        let path = dir.join("pitboss.db");
        let conn = Connection::open(&path)
            .with_context(|| format!("cannot open store {} to checkpoint", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let commits = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (nudge, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let seen = commits.clone();
        let thread = std::thread::Builder::new()
            .name("pitboss-checkpoint".into())
            .spawn(move || {
                use std::sync::mpsc::RecvTimeoutError;
                let mut done = 0;
                // Until the writer drops its end.
                while let Ok(()) | Err(RecvTimeoutError::Timeout) =
                    rx.recv_timeout(CHECKPOINT_EVERY)
                {
                    let now = seen.load(std::sync::atomic::Ordering::Acquire);
                    if now == done {
                        continue;
                    }
                    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        Ok(()) => done = now,
                        Err(e) => tracing::warn!("WAL checkpoint failed (retried): {e}"),
                    }
                }
            })
            .context("cannot start the checkpoint thread")?;
        Ok(Checkpointer {
            nudge: Some(nudge),
            commits,
            thread: Some(thread),
        })
    }

    /// Counts a commit; every few, wakes the thread. Never blocks.
    pub fn committed(&self) {
        let n = self
            .commits
            .fetch_add(1, std::sync::atomic::Ordering::Release)
            + 1;
        if n % COMMITS_PER_CHECKPOINT == 0 {
            if let Some(tx) = &self.nudge {
                let _full_is_fine = tx.try_send(());
            }
        }
    }
}

impl Drop for Checkpointer {
    /// Stops the thread (after the checkpoint it may be running). SQLite
    /// checkpoints what is left when the store's last connection closes.
    fn drop(&mut self) {
        drop(self.nudge.take());
        if let Some(t) = self.thread.take() {
            drop(t.join());
        }
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> rusqlite::Result<String> {
    serde_json::to_string(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> rusqlite::Result<T> {
    serde_json::from_str(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub fn get_setting(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
        r.get(0)
    })
    .optional()
}

pub fn set_setting(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// Every session, revoked ones included (their tokens must keep failing
/// with "revoked", not turn into unknown tokens that invite a re-login).
pub fn load_sessions(conn: &Connection) -> rusqlite::Result<Vec<(String, Session)>> {
    let mut stmt = conn.prepare(
        "SELECT token_hash, operator_id, name, device, role, revoked_at_ms,
                max(created_at_ms, coalesce(last_seen_ms, 0)) FROM sessions",
    )?;
    let rows = stmt.query_map([], |r| {
        let role: String = r.get(4)?;
        Ok((
            r.get::<_, String>(0)?,
            Session {
                actor: Actor {
                    operator_id: r.get(1)?,
                    name: r.get(2)?,
                    device: r.get(3)?,
                    role: Role::parse(&role).unwrap_or(Role::Display),
                },
                revoked: r.get::<_, Option<i64>>(5)?.is_some(),
                since_ms: r.get(6)?,
            },
        ))
    })?;
    rows.collect()
}

/// Where and how a session was opened.
pub struct NewSession<'a> {
    pub token_hash: &'a str,
    pub actor: &'a Actor,
    pub address: &'a str,
    pub via: &'a str,
}

pub fn insert_session(
    tx: &Transaction<'_>,
    s: &NewSession<'_>,
    now_ms: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO sessions (token_hash, operator_id, name, device, role, created_at_ms, address, via, last_seen_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?6)",
        params![
            s.token_hash,
            s.actor.operator_id,
            s.actor.name,
            s.actor.device,
            s.actor.role.as_str(),
            now_ms,
            s.address,
            s.via,
        ],
    )?;
    Ok(())
}

/// Marks a device's sessions revoked; the number of sessions it had that
/// were not revoked yet.
pub fn revoke_sessions(
    tx: &Transaction<'_>,
    operator_id: &str,
    now_ms: i64,
) -> rusqlite::Result<usize> {
    tx.execute(
        "UPDATE sessions SET revoked_at_ms = ?2 WHERE operator_id = ?1 AND revoked_at_ms IS NULL",
        params![operator_id, now_ms],
    )
}

pub fn touch_session(tx: &Transaction<'_>, operator_id: &str, at_ms: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE sessions SET last_seen_ms = max(last_seen_ms, ?2) WHERE operator_id = ?1",
    )?
    .execute(params![operator_id, at_ms])?;
    Ok(())
}

/// Joined devices, newest first, without live connection counts.
pub fn list_devices(conn: &Connection) -> rusqlite::Result<Vec<DeviceInfo>> {
    let mut stmt = conn.prepare(
        "SELECT operator_id, name, device, role, address, via, created_at_ms, last_seen_ms, revoked_at_ms
         FROM sessions ORDER BY created_at_ms DESC, operator_id",
    )?;
    let rows = stmt.query_map([], |r| {
        let role: String = r.get(3)?;
        let revoked_at_ms: Option<i64> = r.get(8)?;
        Ok(DeviceInfo {
            operator_id: r.get(0)?,
            name: r.get(1)?,
            device: r.get(2)?,
            role: Role::parse(&role).unwrap_or(Role::Display),
            address: r.get(4)?,
            via: r.get(5)?,
            created_at_ms: r.get(6)?,
            last_seen_ms: r.get(7)?,
            connections: 0,
            revoked: revoked_at_ms.is_some(),
            revoked_at_ms,
        })
    })?;
    rows.collect()
}

/// One audit row, written in the change's own transaction.
pub fn insert_audit(tx: &Connection, event_id: &str, e: &AuditEntry) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO audit (event_id, seq, op_id, at_ms, operator_id, name, device, role, address, op, before, after, summary, incident_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        event_id,
        e.seq,
        e.op_id,
        e.at_ms,
        e.operator_id,
        e.name,
        e.device,
        e.role.as_str(),
        e.address,
        to_json(&e.op)?,
        to_json(&e.before)?,
        to_json(&e.after)?,
        e.summary,
        e.incident_id,
    ])?;
    Ok(())
}

/// An event's audit trail, newest first, optionally for one incident.
pub fn list_audit(
    conn: &Connection,
    event_id: &str,
    incident_id: Option<&str>,
    limit: u32,
) -> rusqlite::Result<Vec<AuditEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, op_id, at_ms, operator_id, name, device, role, address, op, before, after, summary, incident_id
         FROM audit WHERE event_id = ?1 AND (?2 IS NULL OR incident_id = ?2)
         ORDER BY seq DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![event_id, incident_id, limit], |r| {
        let role: String = r.get(6)?;
        Ok(AuditEntry {
            seq: r.get(0)?,
            op_id: r.get(1)?,
            at_ms: r.get(2)?,
            operator_id: r.get(3)?,
            name: r.get(4)?,
            device: r.get(5)?,
            role: Role::parse(&role).unwrap_or(Role::Display),
            address: r.get(7)?,
            op: from_json(&r.get::<_, String>(8)?)?,
            before: from_json(&r.get::<_, String>(9)?)?,
            after: from_json(&r.get::<_, String>(10)?)?,
            summary: r.get(11)?,
            incident_id: r.get(12)?,
        })
    })?;
    rows.collect()
}

pub fn list_events(conn: &Connection) -> rusqlite::Result<Vec<EventSummary>> {
    let mut stmt = conn
        .prepare("SELECT id, details, seq, created_at_ms FROM events ORDER BY created_at_ms, id")?;
    let rows = stmt.query_map([], |r| {
        let details: EventDetails = from_json(&r.get::<_, String>(1)?)?;
        Ok(EventSummary {
            id: r.get(0)?,
            name: details.name,
            seq: r.get(2)?,
            created_at_ms: r.get(3)?,
        })
    })?;
    rows.collect()
}

pub fn insert_event(
    tx: &Transaction<'_>,
    id: &str,
    state: &EventState,
    now_ms: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO events (id, details, created_at_ms, clock, structure, stats)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            id,
            to_json(&state.details)?,
            now_ms,
            to_json(&state.clock)?,
            to_json(&state.structure)?,
            to_json(&state.stats)?
        ],
    )?;
    Ok(())
}

/// An event's records with its bookkeeping, read inside the write transaction.
#[derive(Clone)]
pub struct EventRow {
    pub state: EventState,
    pub seq: u64,
    pub pruned_through: u64,
    pub next_incident: u64,
}

pub fn load_event(conn: &Connection, id: &str) -> rusqlite::Result<Option<EventRow>> {
    // Cached: preparing this statement costs more than running it, and
    // every snapshot runs it, as does every op on an event not yet cached.
    conn.prepare_cached(
        "SELECT details, clock, structure, stats, seq, pruned_through, next_incident
         FROM events WHERE id = ?1",
    )?
    .query_row([id], |r| {
        Ok(EventRow {
            state: EventState {
                details: from_json(&r.get::<_, String>(0)?)?,
                clock: from_json(&r.get::<_, String>(1)?)?,
                structure: from_json(&r.get::<_, String>(2)?)?,
                stats: from_json(&r.get::<_, String>(3)?)?,
            },
            seq: r.get(4)?,
            pruned_through: r.get(5)?,
            next_incident: r.get(6)?,
        })
    })
    .optional()
}

pub fn event_seq(conn: &Connection, id: &str) -> rusqlite::Result<Option<(u64, u64)>> {
    conn.prepare_cached("SELECT seq, pruned_through FROM events WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

fn incident_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Incident> {
    let severity: String = r.get(3)?;
    let status: String = r.get(4)?;
    Ok(Incident {
        id: r.get(0)?,
        table: r.get(1)?,
        kind: r.get(2)?,
        severity: from_json(&format!("\"{severity}\""))?,
        status: from_json(&format!("\"{status}\""))?,
        note: r.get(5)?,
        created_by: r.get(6)?,
        lock_version: r.get(7)?,
        created_at_ms: r.get(8)?,
        updated_at_ms: r.get(9)?,
    })
}

const INCIDENT_COLUMNS: &str = "id, table_label, kind, severity, status, note, created_by, lock_version, created_at_ms, updated_at_ms";

pub fn load_incident(
    conn: &Connection,
    event_id: &str,
    id: &str,
) -> rusqlite::Result<Option<Incident>> {
    conn.prepare_cached(&format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE event_id = ?1 AND id = ?2"
    ))?
    .query_row(params![event_id, id], incident_from_row)
    .optional()
}

pub fn load_incidents(conn: &Connection, event_id: &str) -> rusqlite::Result<Vec<Incident>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE event_id = ?1 ORDER BY created_at_ms, rowid"
    ))?;
    let rows = stmt.query_map([event_id], incident_from_row)?;
    rows.collect()
}

pub fn insert_incident(tx: &Connection, event_id: &str, i: &Incident) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO incidents (event_id, id, table_label, kind, severity, status, note, created_by,
                                lock_version, created_at_ms, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        event_id,
        i.id,
        i.table,
        i.kind,
        i.severity.as_str(),
        i.status.as_str(),
        i.note,
        i.created_by,
        i.lock_version,
        i.created_at_ms,
        i.updated_at_ms
    ])?;
    Ok(())
}

/// Optimistic update: only succeeds if the stored version is still the one
/// the edit was computed from. Returns whether a row changed.
pub fn update_incident(
    tx: &Connection,
    event_id: &str,
    i: &Incident,
    base_version: u64,
) -> rusqlite::Result<bool> {
    let n = tx
        .prepare_cached(
            "UPDATE incidents SET table_label = ?3, kind = ?4, severity = ?5, status = ?6, note = ?7,
                    lock_version = ?8, updated_at_ms = ?9
             WHERE event_id = ?1 AND id = ?2 AND lock_version = ?10",
        )?
        .execute(params![
            event_id,
            i.id,
            i.table,
            i.kind,
            i.severity.as_str(),
            i.status.as_str(),
            i.note,
            i.lock_version,
            i.updated_at_ms,
            base_version
        ])?;
    Ok(n == 1)
}

pub fn save_clock(tx: &Connection, event_id: &str, c: &ClockState) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE events SET clock = ?2 WHERE id = ?1")?
        .execute(params![event_id, to_json(c)?])?;
    Ok(())
}

pub fn save_stats(tx: &Connection, event_id: &str, s: &Stats) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE events SET stats = ?2 WHERE id = ?1")?
        .execute(params![event_id, to_json(s)?])?;
    Ok(())
}

pub fn save_structure(tx: &Connection, event_id: &str, s: &Structure) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE events SET structure = ?2 WHERE id = ?1")?
        .execute(params![event_id, to_json(s)?])?;
    Ok(())
}

pub fn bump_seq(
    tx: &Connection,
    event_id: &str,
    seq: u64,
    next_incident: u64,
) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE events SET seq = ?2, next_incident = ?3 WHERE id = ?1")?
        .execute(params![event_id, seq, next_incident])?;
    Ok(())
}

pub fn insert_change(
    tx: &Connection,
    event_id: &str,
    seq: u64,
    op_id: &str,
    frame: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO changes (event_id, seq, op_id, frame) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![event_id, seq, op_id, frame])?;
    Ok(())
}

/// Drops changes older than the newest `keep`, in one statement.
pub fn prune_changes(tx: &Connection, event_id: &str, through: u64) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM changes WHERE event_id = ?1 AND seq <= ?2")?
        .execute(params![event_id, through])?;
    tx.prepare_cached("UPDATE events SET pruned_through = ?2 WHERE id = ?1")?
        .execute(params![event_id, through])?;
    Ok(())
}

pub fn changes_after(
    conn: &Connection,
    event_id: &str,
    after: u64,
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT frame FROM changes WHERE event_id = ?1 AND seq > ?2 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![event_id, after], |r| r.get(0))?;
    rows.collect()
}

/// The changes after `after`, each with its seq: what a poll broadcasts.
#[cfg(feature = "bench-polling")]
pub fn changes_with_seq_after(
    conn: &Connection,
    event_id: &str,
    after: u64,
) -> rusqlite::Result<Vec<(u64, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, frame FROM changes WHERE event_id = ?1 AND seq > ?2 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![event_id, after], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// A remembered op: what it asked and what it was answered.
pub struct StoredOp {
    pub event_id: String,
    pub request: String,
    pub outcome: String,
}

pub fn find_op(tx: &Connection, op_id: &str) -> rusqlite::Result<Option<StoredOp>> {
    tx.prepare_cached("SELECT event_id, request, outcome FROM ops WHERE op_id = ?1")?
        .query_row([op_id], |r| {
            Ok(StoredOp {
                event_id: r.get(0)?,
                request: r.get(1)?,
                outcome: r.get(2)?,
            })
        })
        .optional()
}

pub fn insert_op(
    tx: &Connection,
    op_id: &str,
    event_id: &str,
    request: &str,
    outcome: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO ops (op_id, event_id, request, outcome, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![op_id, event_id, request, outcome, now_ms])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        assert!(super::migrations().validate().is_ok());
    }
}
