//! `pitboss-follow`: a Pitboss client without a window.
//!
//! It runs the same engine as the app (outbox, cache, sleep detection, alert
//! gate) and speaks JSON lines: one op or command per line on stdin, one
//! event per line on stdout. A venue's IT person can use it to watch an event
//! from a terminal or to script floor actions; our system tests use it as a
//! real client process they can SIGSTOP, kill -9 and restart.
//!
//! stdin, one object per line:
//! - `{"op": {"type": "stats.bust", "count": 1}, "tag": "any"}` queues an op
//!   durably and prints `{"kind":"queued","tag":…,"op_id":…}`;
//! - `{"cmd": "state"}` prints the replica, status and clock position;
//! - `{"cmd": "refresh"}` is the app's Refresh button;
//! - `{"cmd": "quit"}` (or end of input) stops cleanly.
//!
//! With `--report-shown`, a `shown` line at every tick says what the
//! screen shows (level, time left, seq, status).
//!
//! stdout: `status`, `snapshot`, `caught_up`, `accepted`, `rejected`,
//! `throttled` (the server asked to wait; the op stays queued), `signed_out`
//! (revoked, or a spent pairing code: the process keeps showing the cached
//! state but sends nothing until someone joins again), `woke`, `alert` (a
//! sound the app would play), `slept_through` and `wall_clock_set` (this
//! machine's time of day was set; nothing shown moves) lines, each with
//! `at_ms` (this machine's wall clock, for people) and `boot_ms` (its boot
//! clock, which nobody sets: the same in every process of the machine, so a
//! test can place each line on the server's timeline).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use pitboss_client::alerts::Watcher;
use pitboss_client::time::{boot_ms, wall_ms};
use pitboss_client::{Client, Config, Notice};
use pitboss_core::ops::Op;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Follow a Pitboss event without a window: JSON lines in and out"
)]
struct Args {
    /// The host's address, e.g. 192.168.1.20:7878 (HTTPS; the default port
    /// is 7878)
    #[arg(long)]
    server: String,
    /// The host's key fingerprint (64 hex digits, as `pitboss-server`
    /// prints it). Without it, the key that answers first is pinned in the
    /// cache, as when joining with a long code, and printed to compare
    #[arg(long)]
    pin: Option<String>,
    /// Join code: a long one (coordinator, dealer or display) or a 6-digit
    /// pairing code (single use: once spent, a lost session signs out)
    #[arg(long)]
    code: String,
    /// Event id to follow
    #[arg(long)]
    event: String,
    /// SQLite cache file (replica, session, outbox); keep it to keep queued ops
    #[arg(long)]
    cache: PathBuf,
    #[arg(long, default_value = "pitboss-follow")]
    name: String,
    #[arg(long, default_value = "terminal")]
    device: String,
    /// Ping period in ms
    #[arg(long, default_value_t = 4_000)]
    ping_every_ms: u64,
    /// Silence after which the socket counts as dead, in ms (at most 12 s is
    /// what the app uses)
    #[arg(long, default_value_t = 12_000)]
    dead_after_ms: u64,
    /// Longest wait between reconnect attempts, in ms
    #[arg(long, default_value_t = 10_000)]
    backoff_max_ms: u64,
    /// Print a `shown` line at every tick (4 Hz): the level and time left
    /// the screen shows, with the seq and status it showed them at, so a
    /// test can hold every screen against the server's clock
    #[arg(long)]
    report_shown: bool,
}

fn emit(v: Value) {
    let mut v = v;
    v["at_ms"] = json!(wall_ms());
    v["boot_ms"] = json!(boot_ms());
    let mut out = std::io::stdout().lock();
    // A closed stdout means whoever read us is gone; nothing to report to.
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn state_line(
    client: &Client,
    watcher_view: Option<&(pitboss_client::alerts::Shown, i64, Option<u64>)>,
) -> Value {
    let shown_boot_ms = watcher_view.map(|(_, b, _)| *b);
    let shown_seq = watcher_view.and_then(|(_, _, q)| *q);
    let watcher_view = watcher_view.map(|(s, _, _)| s);
    let replica = client.replica().borrow().clone();
    let status = client.status().borrow().clone();
    let pending: Vec<String> = client
        .pending()
        .borrow()
        .iter()
        .map(|p| p.op_id.clone())
        .collect();
    json!({
        "kind": "state",
        "status": status,
        "seq": replica.as_ref().map(|r| r.seq),
        "state": replica.as_ref().map(|r| &r.state),
        "pending": pending,
        "server_now_ms": client.server_now_ms(),
        "offset_ms": client.offset_ms(),
        "level_index": watcher_view.map(|s| s.level_index),
        "remaining_ms": watcher_view.map(|s| s.remaining_ms),
        // The estimated server time `level_index` and `remaining_ms` were
        // computed for (the last tick), so a test can compare them with the
        // server's own clock at that instant.
        "shown_at_ms": watcher_view.map(|s| s.now_ms),
        // The boot clock at that tick, to find the true server instant.
        "shown_boot_ms": shown_boot_ms,
        // The seq of the state it was computed from (`seq` may be newer).
        "shown_seq": shown_seq,
        "epoch": watcher_view.map(|s| s.epoch),
        "running": watcher_view.map(|s| s.running),
    })
}

fn notice_line(n: &Notice) -> Option<Value> {
    Some(match n {
        Notice::Snapshot { seq } => json!({"kind": "snapshot", "seq": seq}),
        Notice::CaughtUp { seq } => json!({"kind": "caught_up", "seq": seq}),
        Notice::Accepted { op_id, seq } => json!({"kind": "accepted", "op_id": op_id, "seq": seq}),
        Notice::Rejected {
            op_id,
            error,
            message,
            current,
            op,
        } => json!({
            "kind": "rejected", "op_id": op_id, "error": error, "message": message,
            "current": current, "op": op,
        }),
        Notice::Throttled {
            op_id,
            retry_after_ms,
        } => json!({"kind": "throttled", "op_id": op_id, "retry_after_ms": retry_after_ms}),
        Notice::SignedOut { reason } => json!({"kind": "signed_out", "reason": reason}),
        Notice::Woke { source, away_ms } => {
            json!({"kind": "woke", "source": source, "away_ms": away_ms})
        }
        Notice::WallClockSet { by_ms } => json!({"kind": "wall_clock_set", "by_ms": by_ms}),
        Notice::Change { .. } => return None,
    })
}

/// One render tick: what the screen shows and what it plays, as lines.
fn render(
    watcher: &mut Watcher,
    client: &Client,
    report_shown: bool,
) -> Option<(pitboss_client::alerts::Shown, i64, Option<u64>)> {
    let (s, alert) = watcher.tick(client);
    if let Some(a) = alert {
        emit(json!({
            "kind": "alert", "sound": a.sound, "level_index": a.level_index,
            "epoch": a.epoch, "server_now_ms": client.server_now_ms(),
            // Transitions confirmed in the same tick, announced by this
            // one sound.
            "also": a.also.iter().map(|(sound, level, epoch)| json!({
                "sound": sound, "level_index": level, "epoch": epoch,
            })).collect::<Vec<_>>(),
        }));
    }
    if let Some(t) = watcher.take_slept_through() {
        emit(json!({"kind": "slept_through", "info": t}));
    }
    let seq = client.replica().borrow().as_ref().map(|r| r.seq);
    // The boot instant the tick's estimate was made at, exactly: the
    // estimate less the offset it used (reading the boot clock here instead
    // would add whatever time this process spent since, under load).
    let shown = s.map(|s| {
        let steady = s.now_ms - client.offset_ms().unwrap_or(0);
        let at = pitboss_client::time::boot_of_steady(steady);
        (s, at, seq)
    });
    if let (true, Some((s, boot, _))) = (report_shown, &shown) {
        let st = client.status().borrow().clone();
        emit(json!({
            "kind": "shown", "level_index": s.level_index,
            "remaining_ms": s.remaining_ms, "running": s.running,
            "epoch": s.epoch, "seq": seq, "status": st,
            "server_now_ms": s.now_ms, "shown_boot_ms": boot,
        }));
    }
    shown
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = pitboss_client::server_url(&args.server).map_err(anyhow::Error::msg)?;
    let mut cfg = Config::new(&server, &args.code, &args.event, args.cache.clone());
    cfg.pin = match &args.pin {
        Some(p) => Some(p.parse().map_err(anyhow::Error::msg)?),
        None => None,
    };
    cfg.name = args.name.clone();
    cfg.device = args.device.clone();
    cfg.ping_every = Duration::from_millis(args.ping_every_ms);
    cfg.dead_after = Duration::from_millis(args.dead_after_ms);
    cfg.backoff_max = Duration::from_millis(args.backoff_max_ms);
    if cfg.dead_after <= cfg.ping_every {
        bail!("--dead-after-ms must be longer than --ping-every-ms");
    }
    let client = Client::start(cfg).context("cannot open the cache")?;
    let mut notices = client.notices();
    let mut status = client.status();
    let mut watcher = Watcher::new(&client);
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    // The app renders at 4 Hz; alerts are decided at the same rate here.
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut shown = None;
    emit(json!({"kind": "status", "status": *status.borrow_and_update()}));
    loop {
        tokio::select! {
            // The render tick, or at once when the server confirms a
            // crossing a tick saw: the app does the same.
            () = async {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = watcher.confirmed() => {}
                }
            } => shown = render(&mut watcher, &client, args.report_shown),
            r = status.changed() => {
                if r.is_err() { break; }
                let s = status.borrow_and_update().clone();
                emit(json!({"kind": "status", "status": s}));
            }
            n = notices.recv() => match n {
                Ok(n) => if let Some(v) = notice_line(&n) { emit(v) },
                Err(tokio::sync::broadcast::error::RecvError::Lagged(k)) => {
                    emit(json!({"kind": "lagged", "missed": k}));
                }
                Err(_) => break,
            },
            line = lines.next_line() => {
                let Ok(Some(line)) = line else { break };
                if line.trim().is_empty() { continue; }
                let v: Value = match serde_json::from_str(&line) {
                    Ok(v) => v,
                    Err(e) => { emit(json!({"kind": "error", "message": format!("not JSON: {e}")})); continue; }
                };
                if let Some(op) = v.get("op") {
                    let tag = v.get("tag").cloned().unwrap_or(Value::Null);
                    match serde_json::from_value::<Op>(op.clone()) {
                        Ok(op) => match client.submit(op).await {
                            Ok(op_id) => emit(json!({"kind": "queued", "tag": tag, "op_id": op_id})),
                            Err(e) => emit(json!({"kind": "error", "tag": tag, "message": e.to_string()})),
                        },
                        Err(e) => emit(json!({"kind": "error", "tag": tag, "message": format!("not an op: {e}")})),
                    }
                    continue;
                }
                match v.get("cmd").and_then(Value::as_str) {
                    Some("state") => emit(state_line(&client, shown.as_ref())),
                    Some("refresh") => client.refresh().await,
                    Some("quit") => break,
                    _ => emit(json!({"kind": "error", "message": "expected {\"op\": …} or {\"cmd\": \"state\"|\"refresh\"|\"quit\"}"})),
                }
            }
        }
    }
    client.shutdown().await;
    Ok(())
}
