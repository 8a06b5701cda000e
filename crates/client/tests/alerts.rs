//! Alerts against a real server over real sockets: a screen hears a level
//! change it watched happen, once, and never one it learned by catching up.

mod common;

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use common::{accepted as op, server, COORD, DEALER};
use pitboss_client::alerts::{Alert, Sound, Watcher};
use pitboss_client::{Client, Config, Status};
use pitboss_core::clock::position;
use pitboss_core::Op;

fn config(addr: std::net::SocketAddr, code: &str, event: &str, cache: &Path) -> Config {
    let mut cfg = common::config(addr, code, event, cache);
    cfg.ping_every = Duration::from_millis(300);
    cfg.dead_after = Duration::from_secs(1);
    cfg
}

/// Ticks every watcher at 20 Hz for `d`, collecting what each heard.
async fn watch_for(d: Duration, screens: &mut [(&Client, &mut Watcher, &mut Vec<Alert>)]) {
    let end = tokio::time::Instant::now() + d;
    while tokio::time::Instant::now() < end {
        for (c, w, heard) in screens.iter_mut() {
            if let (_, Some(a)) = w.tick(c) {
                heard.push(a);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_alert_per_real_level_change_and_none_for_catching_up() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = server(&dir.path().join("srv")).await?;
    let event = srv.demo_event_id().context("demo")?.to_string();
    let proxy = common::Proxy::start(srv.local_addr()).await?;
    let a = Client::start(config(
        srv.local_addr(),
        COORD,
        &event,
        &dir.path().join("a.db"),
    ))?;
    let b = Client::start(config(
        proxy.addr(),
        DEALER,
        &event,
        &dir.path().join("b.db"),
    ))?;
    for c in [&a, &b] {
        c.wait_status(Duration::from_secs(5), |s| *s == Status::Live)
            .await?;
    }
    let (mut wa, mut wb) = (Watcher::new(&a), Watcher::new(&b));
    let (mut ha, mut hb) = (Vec::new(), Vec::new());
    watch_for(
        Duration::from_millis(300),
        &mut [(&a, &mut wa, &mut ha), (&b, &mut wb, &mut hb)],
    )
    .await;
    ensure!(
        ha.is_empty() && hb.is_empty(),
        "nothing changed, nothing heard"
    );

    // 1. A coordinator takes level 1 down to 1.2 s (crossing the one-minute
    //    mark: the warning), then the clock crosses into level 2 while both
    //    watch: one level beep each.
    let r = a.replica().borrow().clone().context("state")?;
    let p = position(&r.state.clock, &r.state.structure, a.server_now_ms());
    ensure!(
        p.running && p.level_index == 0,
        "the demo runs level 1: {p:?}"
    );
    op(
        &a,
        Op::ClockAdjust {
            delta_ms: 1_200 - p.remaining_ms,
        },
    )
    .await?;
    watch_for(
        Duration::from_millis(2_500),
        &mut [(&a, &mut wa, &mut ha), (&b, &mut wb, &mut hb)],
    )
    .await;
    for (who, heard) in [("A", &ha), ("B", &hb)] {
        let sounds: Vec<_> = heard.iter().map(|a| (a.sound, a.level_index)).collect();
        ensure!(
            sounds == [(Sound::Minute, 0), (Sound::Level, 1)],
            "{who} heard {heard:?}"
        );
    }

    // 2. The coordinator moves to the next level: A gets the ack and the
    //    broadcast of its own op, B the broadcast; one beep each.
    op(&a, Op::ClockSetLevel { level_index: 2 }).await?;
    watch_for(
        Duration::from_millis(500),
        &mut [(&a, &mut wa, &mut ha), (&b, &mut wb, &mut hb)],
    )
    .await;
    ensure!(ha.len() == 3 && ha[2].level_index == 2, "A heard {ha:?}");
    ensure!(hb.len() == 3 && hb[2].level_index == 2, "B heard {hb:?}");

    // 3. B's socket goes half-open; meanwhile the level moves twice. B
    //    notices, reconnects, replays what it missed: silence, right level.
    proxy.stall_current();
    op(&a, Op::ClockSetLevel { level_index: 3 }).await?;
    watch_for(
        Duration::from_millis(300),
        &mut [(&a, &mut wa, &mut ha), (&b, &mut wb, &mut hb)],
    )
    .await;
    op(&a, Op::ClockSetLevel { level_index: 5 }).await?;
    let seq = a
        .replica()
        .borrow()
        .as_ref()
        .map(|r| r.seq)
        .context("seq")?;
    let end = tokio::time::Instant::now() + Duration::from_secs(6);
    loop {
        watch_for(
            Duration::from_millis(100),
            &mut [(&a, &mut wa, &mut ha), (&b, &mut wb, &mut hb)],
        )
        .await;
        let bseq = b.replica().borrow().as_ref().map(|r| r.seq);
        if bseq == Some(seq) && *b.status().borrow() == Status::Live {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < end,
            "B never caught up (at {bseq:?}, want {seq})"
        );
    }
    watch_for(
        Duration::from_millis(300),
        &mut [(&a, &mut wa, &mut ha), (&b, &mut wb, &mut hb)],
    )
    .await;
    ensure!(ha.len() == 5, "A watched both moves live: {ha:?}");
    ensure!(hb.len() == 3, "B caught up silently: {hb:?}");
    let shown_b = wb.tick(&b).0.context("b shows")?;
    ensure!(
        shown_b.level_index == 5,
        "B shows the level it caught up to"
    );

    // 4. A fresh screen (a reload) starts from a snapshot: silent.
    let c = Client::start(config(
        srv.local_addr(),
        DEALER,
        &event,
        &dir.path().join("c.db"),
    ))?;
    c.wait_status(Duration::from_secs(5), |s| *s == Status::Live)
        .await?;
    let mut wc = Watcher::new(&c);
    let mut hc = Vec::new();
    watch_for(Duration::from_millis(300), &mut [(&c, &mut wc, &mut hc)]).await;
    ensure!(hc.is_empty(), "a snapshot is not a level change: {hc:?}");

    for c in [a, b, c] {
        c.shutdown().await;
    }
    srv.shutdown().await;
    Ok(())
}
