//! The sync engine against a real server (in-process, over real sockets).

mod common;

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use common::{server, wait_seq, COORD, DEALER};
use pitboss_client::{Client, Notice, Outcome, Status};
use pitboss_core::Op;

fn client(server: &pitboss_server::Server, code: &str, cache: &Path) -> Result<Client> {
    let event = server.demo_event_id().context("demo event")?;
    Client::start(common::config(server.local_addr(), code, event, cache))
}

#[tokio::test]
async fn two_clients_converge_and_an_own_op_applies_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = server(&dir.path().join("srv")).await?;
    let a = client(&srv, COORD, &dir.path().join("a.db"))?;
    let b = client(&srv, DEALER, &dir.path().join("b.db"))?;
    a.wait_status(Duration::from_secs(5), |s| *s == Status::Live)
        .await?;
    b.wait_status(Duration::from_secs(5), |s| *s == Status::Live)
        .await?;

    let mut notices = a.notices();
    let out = a
        .submit_and_wait(Op::ClockAdjust { delta_ms: 60_000 }, Duration::from_secs(5))
        .await?;
    let Outcome::Accepted { seq } = out else {
        anyhow::bail!("refused: {out:?}")
    };
    let out = b
        .submit_and_wait(Op::StatsBust { count: 2 }, Duration::from_secs(5))
        .await?;
    ensure!(matches!(out, Outcome::Accepted { .. }), "{out:?}");
    // Mixed ops from both: an incident raised by the dealer, moved on by
    // the coordinator from the version it saw, stats from both sides.
    let out = b
        .submit_and_wait(
            Op::IncidentCreate {
                table: "7".into(),
                kind: "Misdeal".into(),
                severity: pitboss_core::Severity::Medium,
                note: "Robert'); DROP TABLE incidents;--".into(),
            },
            Duration::from_secs(5),
        )
        .await?;
    let Outcome::Accepted { seq: created } = out else {
        anyhow::bail!("{out:?}")
    };
    wait_seq(&a, created, Duration::from_secs(5)).await?;
    let inc = a
        .replica()
        .borrow()
        .as_ref()
        .and_then(|r| r.state.incidents.first().cloned())
        .context("incident at A")?;
    let out = a
        .submit_and_wait(
            Op::IncidentUpdate {
                incident_id: inc.id.clone(),
                base_version: inc.lock_version,
                table: None,
                kind: None,
                severity: None,
                note: None,
                status: Some(pitboss_core::IncidentStatus::Acknowledged),
                reopen: false,
            },
            Duration::from_secs(5),
        )
        .await?;
    ensure!(matches!(out, Outcome::Accepted { .. }), "{out:?}");
    let out = a
        .submit_and_wait(Op::StatsEntry { count: 1 }, Duration::from_secs(5))
        .await?;
    let Outcome::Accepted { seq: last } = out else {
        anyhow::bail!("{out:?}")
    };
    wait_seq(&a, last, Duration::from_secs(5)).await?;
    wait_seq(&b, last, Duration::from_secs(5)).await?;
    let ra = a.replica().borrow().clone().context("a state")?;
    let rb = b.replica().borrow().clone().context("b state")?;
    ensure!(ra.state == rb.state && ra.seq == rb.seq, "replicas differ");
    ensure!(ra.state.stats.players_remaining == 47);
    ensure!(
        ra.state.incidents.len() == 1
            && ra.state.incidents[0].status == pitboss_core::IncidentStatus::Acknowledged
    );
    ensure!(ra.state.incidents[0].note == "Robert'); DROP TABLE incidents;--");
    let snap = srv
        .snapshot(srv.demo_event_id().context("demo")?)
        .await
        .map_err(|e| anyhow::anyhow!(e.body.message))?;
    ensure!(
        snap.state == ra.state && snap.seq == ra.seq,
        "client state differs from the server's"
    );

    // The ack and the broadcast of A's op made exactly one update.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut changes_for_seq = 0;
    while let Ok(n) = notices.try_recv() {
        if let Notice::Change { seq: s, live, .. } = n {
            if s == seq {
                changes_for_seq += 1;
                ensure!(live, "a change made while live is live");
            }
        }
    }
    ensure!(
        changes_for_seq == 1,
        "seq {seq} applied {changes_for_seq} times"
    );
    ensure!(a.pending().borrow().is_empty() && b.pending().borrow().is_empty());

    // Both estimate server time (same machine: offset near zero).
    let off = a.offset_ms().context("no offset estimate")?;
    ensure!(off.abs() < 100, "offset {off} ms on loopback");
    ensure!((a.server_now_ms() - srv.now_ms()).abs() < 100);
    a.shutdown().await;
    b.shutdown().await;
    srv.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn offline_work_survives_a_host_restart_and_applies_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("srv");
    let srv = server(&data).await?;
    let addr = srv.local_addr();
    let event = srv.demo_event_id().context("demo")?.to_string();
    let cache = dir.path().join("dealer.db");
    let c = client(&srv, DEALER, &cache)?;
    c.wait_status(Duration::from_secs(5), |s| *s == Status::Live)
        .await?;
    let seq0 = c
        .replica()
        .borrow()
        .as_ref()
        .map(|r| r.seq)
        .context("state")?;

    // The host goes away: the client says so and keeps the last state.
    srv.shutdown().await;
    c.wait_status(Duration::from_secs(5), |s| {
        matches!(s, Status::Reconnecting { .. } | Status::Offline { .. })
    })
    .await?;
    for _ in 0..3 {
        c.submit(Op::StatsBust { count: 1 }).await?;
    }
    ensure!(c.pending().borrow().len() == 3, "three pending bust-outs");
    // The app is closed and opened again while the host is still down.
    c.shutdown().await;
    let c = { Client::start(common::config(addr, DEALER, &event, &cache))? };
    ensure!(
        c.replica().borrow().as_ref().map(|r| r.seq) == Some(seq0),
        "cached state shown at once"
    );
    ensure!(
        c.pending().borrow().len() == 3,
        "the outbox survived the restart"
    );

    // The host comes back on the same address and store.
    let srv = common::server_with(&data, |c| c.listen = addr).await?;
    c.wait_status(Duration::from_secs(5), |s| *s == Status::Live)
        .await?;
    wait_seq(&c, seq0 + 3, Duration::from_secs(5)).await?;
    tokio::time::timeout(Duration::from_secs(5), async {
        let mut p = c.pending();
        while !p.borrow_and_update().is_empty() {
            if p.changed().await.is_err() {
                break;
            }
        }
    })
    .await
    .context("pending ops never cleared")?;
    let snap = srv
        .snapshot(&event)
        .await
        .map_err(|e| anyhow::anyhow!(e.body.message))?;
    ensure!(
        snap.state.stats.players_remaining == 45,
        "each bust applied once: {}",
        snap.state.stats.players_remaining
    );
    ensure!(snap.seq == seq0 + 3);
    c.shutdown().await;
    srv.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn screens_with_wrong_clocks_show_the_same_clock() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = server(&dir.path().join("srv")).await?;
    let event = srv.demo_event_id().context("demo")?.to_string();
    let start = |code: &str, name: &str, skew_ms: i64| {
        let mut cfg = common::config(srv.local_addr(), code, &event, &dir.path().join(name));
        cfg.local_clock_skew_ms = skew_ms;
        Client::start(cfg)
    };
    // One laptop 5 minutes fast, one 3 minutes and 17 s slow.
    let a = start(COORD, "a.db", 300_000)?;
    let b = start(DEALER, "b.db", -197_000)?;
    for c in [&a, &b] {
        c.wait_status(Duration::from_secs(5), |s| *s == Status::Live)
            .await?;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    ensure!(
        a.offset_ms().is_some() && b.offset_ms().is_some(),
        "both have an estimate"
    );
    let ra = a.replica().borrow().clone().context("a")?;
    let rb = b.replica().borrow().clone().context("b")?;
    for _ in 0..20 {
        let (ta, tb) = (a.server_now_ms(), b.server_now_ms());
        let pa = pitboss_core::clock::position(&ra.state.clock, &ra.state.structure, ta);
        let pb = pitboss_core::clock::position(&rb.state.clock, &rb.state.structure, tb);
        ensure!(pa.level_index == pb.level_index, "{pa:?} vs {pb:?}");
        ensure!(
            (pa.remaining_ms - pb.remaining_ms).abs() <= 20,
            "screens differ by {} ms (offsets {:?} / {:?})",
            (pa.remaining_ms - pb.remaining_ms).abs(),
            a.offset_ms(),
            b.offset_ms()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    a.shutdown().await;
    b.shutdown().await;
    srv.shutdown().await;
    Ok(())
}
