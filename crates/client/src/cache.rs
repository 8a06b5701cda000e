//! The local SQLite cache: the last known state of each event, the session
//! token per server, and the outbox of ops not yet answered.
//!
//! It is what lets the app open with the last known clock and board when the
//! host is unreachable, and what keeps a dealer's bust-out through an app
//! restart until the server has answered it.

use std::path::Path;

use anyhow::Context as _;
use pitboss_core::Op;
use rusqlite::{params, Connection, OptionalExtension};
use rusqlite_migration::{Migrations, M};
use serde::{Deserialize, Serialize};

use crate::replica::Replica;
use pitboss_tls::Fingerprint;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(
            r#"
        CREATE TABLE replicas (
            event_id TEXT PRIMARY KEY,
            seq INTEGER NOT NULL,
            state TEXT NOT NULL,
            -- local wall time of the last exchange with the server
            synced_at_ms INTEGER NOT NULL
        );
        CREATE TABLE sessions (
            server TEXT PRIMARY KEY,
            token TEXT NOT NULL,
            role TEXT NOT NULL,
            operator_id TEXT NOT NULL
        );
        CREATE TABLE outbox (
            position INTEGER PRIMARY KEY AUTOINCREMENT,
            op_id TEXT NOT NULL UNIQUE,
            event_id TEXT NOT NULL,
            op TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL
        );
        "#,
        ),
        // A server whose coordinator revoked this device (or whose one-time
        // pairing code is spent): kept across restarts, so the app never
        // quietly logs in again with a stored code.
        M::up(
            r#"
        CREATE TABLE signed_out (
            server TEXT PRIMARY KEY,
            reason TEXT NOT NULL,
            at_ms INTEGER NOT NULL
        );
        "#,
        ),
        // The key each server proved it holds when this device joined
        // (hex SHA-256 of its public key): from then on, no other key.
        M::up(
            r#"
        CREATE TABLE pins (
            server TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL
        );
        "#,
        ),
    ])
}

/// An op waiting for the server's answer, shown as pending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingOp {
    pub op_id: String,
    pub event_id: String,
    pub op: Op,
    pub created_at_ms: i64,
}

/// A session token remembered for one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub token: String,
    pub role: String,
    pub operator_id: String,
}

/// The cache holds this device's session token, which lets anyone who reads
/// it act as the device: the file is readable by its owner only. SQLite
/// gives its `-wal` and `-shm` files the database file's permissions.
#[cfg(unix)]
fn owner_only(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create cache {}", path.display()))?;
    // A cache made by an older version may be readable by others.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict cache {}", path.display()))?;
    Ok(())
}

#[cfg(not(unix))]
fn owner_only(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// The cache. The connection sits behind a mutex so the actor's future stays
/// `Send` across awaits; only the actor uses it, so it is never contended.
pub struct Cache {
    conn: std::sync::Mutex<Connection>,
}

impl Cache {
    pub fn open(path: &Path) -> anyhow::Result<Cache> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        owner_only(path)?;
        let mut conn = Connection::open(path)
            .with_context(|| format!("cannot open cache {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // The outbox must survive a crash of the app; a power cut may lose the
        // last state snapshot, which the server gives back on reconnect.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrations()
            .to_latest(&mut conn)
            .context("cannot migrate the cache")?;
        Ok(Cache {
            conn: std::sync::Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (every
        // statement is atomic), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn load_replica(&self, event_id: &str) -> anyhow::Result<Option<(Replica, i64)>> {
        let row: Option<(u64, String, i64)> = self
            .conn()
            .query_row(
                "SELECT seq, state, synced_at_ms FROM replicas WHERE event_id = ?1",
                [event_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((seq, state, synced)) = row else {
            return Ok(None);
        };
        // A cache written by an older version that no longer parses is
        // dropped: the server will send a snapshot.
        match serde_json::from_str(&state) {
            Ok(state) => Ok(Some((
                Replica {
                    event_id: event_id.to_string(),
                    seq,
                    state,
                },
                synced,
            ))),
            Err(e) => {
                tracing::warn!("ignoring unreadable cached state of {event_id}: {e}");
                Ok(None)
            }
        }
    }

    pub fn save_replica(&self, r: &Replica, synced_at_ms: i64) -> anyhow::Result<()> {
        self.conn().execute(
            "INSERT INTO replicas (event_id, seq, state, synced_at_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(event_id) DO UPDATE SET seq = excluded.seq, state = excluded.state,
                 synced_at_ms = excluded.synced_at_ms",
            params![
                r.event_id,
                r.seq,
                serde_json::to_string(&r.state)?,
                synced_at_ms
            ],
        )?;
        Ok(())
    }

    pub fn session(&self, server: &str) -> anyhow::Result<Option<StoredSession>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT token, role, operator_id FROM sessions WHERE server = ?1",
                [server],
                |r| {
                    Ok(StoredSession {
                        token: r.get(0)?,
                        role: r.get(1)?,
                        operator_id: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn save_session(&self, server: &str, s: &StoredSession) -> anyhow::Result<()> {
        self.conn().execute(
            "INSERT INTO sessions (server, token, role, operator_id) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(server) DO UPDATE SET token = excluded.token, role = excluded.role,
                 operator_id = excluded.operator_id",
            params![server, s.token, s.role, s.operator_id],
        )?;
        Ok(())
    }

    pub fn forget_session(&self, server: &str) -> anyhow::Result<()> {
        self.conn()
            .execute("DELETE FROM sessions WHERE server = ?1", [server])?;
        Ok(())
    }

    /// Remembers that this device is signed out of `server` (revoked, or its
    /// pairing code spent) and forgets the session token. Until a person
    /// joins again ([`Cache::clear_signed_out`]), no code logs in silently.
    pub fn mark_signed_out(&self, server: &str, reason: &str, at_ms: i64) -> anyhow::Result<()> {
        let conn = self.conn();
        conn.execute("DELETE FROM sessions WHERE server = ?1", [server])?;
        conn.execute(
            "INSERT INTO signed_out (server, reason, at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT(server) DO UPDATE SET reason = excluded.reason, at_ms = excluded.at_ms",
            params![server, reason, at_ms],
        )?;
        Ok(())
    }

    /// Why this device is signed out of `server`, if it is.
    pub fn signed_out(&self, server: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT reason FROM signed_out WHERE server = ?1",
                [server],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// A person joined again with a code that worked.
    pub fn clear_signed_out(&self, server: &str) -> anyhow::Result<()> {
        self.conn()
            .execute("DELETE FROM signed_out WHERE server = ?1", [server])?;
        Ok(())
    }

    /// The key pinned for `server`, if this device joined it.
    pub fn pin(&self, server: &str) -> anyhow::Result<Option<Fingerprint>> {
        let hex: Option<String> = self
            .conn()
            .query_row(
                "SELECT fingerprint FROM pins WHERE server = ?1",
                [server],
                |r| r.get(0),
            )
            .optional()?;
        hex.map(|h| h.parse().map_err(anyhow::Error::msg))
            .transpose()
    }

    pub fn save_pin(&self, server: &str, key: Fingerprint) -> anyhow::Result<()> {
        self.conn().execute(
            "INSERT INTO pins (server, fingerprint) VALUES (?1, ?2)
             ON CONFLICT(server) DO UPDATE SET fingerprint = excluded.fingerprint",
            params![server, key.hex()],
        )?;
        Ok(())
    }

    /// A person re-pairs a host whose key really changed (reinstalled):
    /// its old key, and any session made under it, are forgotten.
    pub fn forget_pin(&self, server: &str) -> anyhow::Result<()> {
        let conn = self.conn();
        conn.execute("DELETE FROM pins WHERE server = ?1", [server])?;
        conn.execute("DELETE FROM sessions WHERE server = ?1", [server])?;
        Ok(())
    }

    /// Appends an op to the outbox; it is durable when this returns.
    pub fn push_op(&self, p: &PendingOp) -> anyhow::Result<()> {
        self.conn().execute(
            "INSERT INTO outbox (op_id, event_id, op, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![
                p.op_id,
                p.event_id,
                serde_json::to_string(&p.op)?,
                p.created_at_ms
            ],
        )?;
        Ok(())
    }

    /// Removes an op the server has answered (accepted or rejected).
    pub fn remove_op(&self, op_id: &str) -> anyhow::Result<()> {
        self.conn()
            .execute("DELETE FROM outbox WHERE op_id = ?1", [op_id])?;
        Ok(())
    }

    /// Pending ops of every event, in the order they were made.
    pub fn pending(&self) -> anyhow::Result<Vec<PendingOp>> {
        self.pending_where(None)
    }

    /// Pending ops of one event, in the order they were made. A client only
    /// replays and applies its own event's ops: another event's seq numbers
    /// mean nothing to this event's replica.
    pub fn pending_for(&self, event_id: &str) -> anyhow::Result<Vec<PendingOp>> {
        self.pending_where(Some(event_id))
    }

    fn pending_where(&self, event_id: Option<&str>) -> anyhow::Result<Vec<PendingOp>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT op_id, event_id, op, created_at_ms FROM outbox
             WHERE ?1 IS NULL OR event_id = ?1 ORDER BY position",
        )?;
        let rows = stmt.query_map([event_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (op_id, event_id, op, created_at_ms) = row?;
            out.push(PendingOp {
                op_id,
                event_id,
                op: serde_json::from_str(&op)?,
                created_at_ms,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        assert!(migrations().validate().is_ok());
    }

    #[test]
    fn the_outbox_keeps_order_across_reopen() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("cache.db");
        {
            let c = Cache::open(&path)?;
            for (i, id) in ["b", "a", "c"].iter().enumerate() {
                c.push_op(&PendingOp {
                    op_id: id.to_string(),
                    event_id: "ev".into(),
                    op: Op::StatsBust { count: 1 },
                    created_at_ms: i as i64,
                })?;
            }
            c.remove_op("a")?;
        }
        let c = Cache::open(&path)?;
        let ids: Vec<String> = c.pending()?.into_iter().map(|p| p.op_id).collect();
        assert_eq!(ids, ["b", "c"]);
        Ok(())
    }

    #[test]
    fn signed_out_survives_a_restart_and_drops_the_token() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("cache.db");
        let s = StoredSession {
            token: "t".into(),
            role: "dealer".into(),
            operator_id: "op-1".into(),
        };
        {
            let c = Cache::open(&path)?;
            c.save_session("http://a", &s)?;
            c.save_session("http://b", &s)?;
            c.mark_signed_out("http://a", "revoked", 1)?;
        }
        let c = Cache::open(&path)?;
        assert_eq!(c.signed_out("http://a")?.as_deref(), Some("revoked"));
        assert_eq!(c.session("http://a")?, None);
        assert_eq!(c.signed_out("http://b")?, None);
        assert_eq!(c.session("http://b")?, Some(s));
        c.clear_signed_out("http://a")?;
        assert_eq!(c.signed_out("http://a")?, None);
        Ok(())
    }

    #[test]
    fn a_pin_is_kept_per_server_and_forgetting_it_drops_the_session() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("cache.db");
        let key = Fingerprint::of_spki(b"host key");
        let s = StoredSession {
            token: "t".into(),
            role: "dealer".into(),
            operator_id: "op-1".into(),
        };
        {
            let c = Cache::open(&path)?;
            c.save_pin("https://a", key)?;
            c.save_session("https://a", &s)?;
        }
        let c = Cache::open(&path)?;
        assert_eq!(c.pin("https://a")?, Some(key));
        assert_eq!(c.pin("https://b")?, None);
        c.forget_pin("https://a")?;
        assert_eq!(c.pin("https://a")?, None);
        assert_eq!(
            c.session("https://a")?,
            None,
            "a session made under the old key goes too"
        );
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn the_token_is_readable_by_its_owner_only() -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("cache.db");
        // A cache left readable by others, as an older version made it.
        std::fs::write(&path, b"")?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        let c = Cache::open(&path)?;
        c.save_session(
            "http://a",
            &StoredSession {
                token: "secret".into(),
                role: "dealer".into(),
                operator_id: "op-1".into(),
            },
        )?;
        for name in ["cache.db", "cache.db-wal", "cache.db-shm"] {
            let mode = std::fs::metadata(dir.path().join(name))?
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{name} is open to others: {mode:o}");
        }
        Ok(())
    }
}
