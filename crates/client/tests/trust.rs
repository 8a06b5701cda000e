//! Trust on an open venue network, from the client's side, against a real
//! server (in-process, over real sockets): pairing codes join once, a
//! revoked device is cut off at once and signs out for good (no silent
//! login again, not even after a restart), a throttled op waits in the
//! outbox and goes again with the same op id (over the WebSocket and over
//! the HTTP fallback), a display sends nothing, and the audit trail read
//! through [`Venue`] says what was done.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use common::{server, server_with, COORD, DEALER};
use pitboss_client::venue::{PAIRING_SPENT, PAIRING_UNVERIFIED, REVOKED};
use pitboss_client::{Client, Config, Notice, Outcome, Status, Venue, VenueConfig, VenueError};
use pitboss_core::{Op, Role};
use pitboss_faultproxy::Link;

fn venue(base: &str, code: &str, name: &str, device: &str, cache: &Path) -> Result<Venue> {
    Venue::new(VenueConfig {
        server: base.to_string(),
        pin: None,
        join_code: code.to_string(),
        name: name.into(),
        device: device.into(),
        cache_path: cache.to_path_buf(),
    })
}

fn config(base: &str, code: &str, event: &str, cache: &Path, name: &str) -> Config {
    let mut cfg = common::config_at(base, code, event, cache);
    cfg.name = name.into();
    cfg.device = format!("{name}-laptop");
    cfg
}

fn signed_out(s: &Status) -> bool {
    matches!(s, Status::SignedOut { .. })
}

/// Devices the server knows, by name.
async fn device_names(coord: &Venue) -> Result<Vec<String>> {
    Ok(coord.devices().await?.into_iter().map(|d| d.name).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pairing_code_joins_one_device_once_with_its_role() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = server(&dir.path().join("srv")).await?;
    let base = format!("https://{}", srv.local_addr());
    let coord = venue(&base, COORD, "Ana", "desk", &dir.path().join("c.db"))?;
    coord.login().await?;
    let code = coord.create_pairing(Role::Dealer).await?;
    ensure!(
        code.code.len() == 6 && code.code.bytes().all(|b| b.is_ascii_digit()),
        "{code:?}"
    );
    ensure!(code.role == Role::Dealer);
    ensure!(
        coord.pairings().await?.iter().any(|p| p.code == code.code),
        "listed while open"
    );

    // Typed the way a person reads it off the screen.
    let typed = format!("{} {}", &code.code[..3], &code.code[3..]);
    let dan = venue(&base, &typed, "Dan", "table-4", &dir.path().join("d.db"))?;
    let s = dan.login().await?;
    ensure!(s.role == "dealer", "{s:?}");
    ensure!(
        !coord.pairings().await?.iter().any(|p| p.code == code.code),
        "a used code is gone from the list"
    );
    let again = venue(&base, &code.code, "Eve", "phone", &dir.path().join("e.db"))?;
    match again.login().await {
        Err(VenueError::PairingFailed(m)) if m == PAIRING_UNVERIFIED => {}
        other => bail!("a used pairing code joined a second device: {other:?}"),
    }
    // A cancelled code no longer joins.
    let cancelled = coord.create_pairing(Role::Display).await?;
    coord.cancel_pairing(&cancelled.code).await?;
    let wall = venue(
        &base,
        &cancelled.code,
        "Wall",
        "tv",
        &dir.path().join("w.db"),
    )?;
    ensure!(
        matches!(wall.login().await, Err(VenueError::PairingFailed(_))),
        "a cancelled code joined"
    );
    let list = coord.devices().await?;
    let d = list
        .iter()
        .find(|d| d.name == "Dan")
        .context("Dan in the list")?;
    ensure!(d.device == "table-4" && d.role == Role::Dealer && d.via == "pairing");
    ensure!(!list.iter().any(|d| d.name == "Eve" || d.name == "Wall"));
    srv.shutdown().await;
    Ok(())
}

/// The coordinator revokes a live dealer: its socket closes at once, it says
/// "revoked" within a second, it queues nothing more, and neither Refresh
/// nor a restart of the client logs it in again — with a pairing code or
/// with the long dealer code it could still have used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_client_signs_out_within_a_second_and_never_logs_in_again() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = server(&dir.path().join("srv")).await?;
    let base = format!("https://{}", srv.local_addr());
    let event = srv.demo_event_id().context("demo")?.to_string();
    let coord = venue(&base, COORD, "Ana", "desk", &dir.path().join("c.db"))?;
    coord.login().await?;

    for (label, code) in [
        ("paired", coord.create_pairing(Role::Dealer).await?.code),
        ("long-code", DEALER.to_string()),
    ] {
        let cache = dir.path().join(format!("{label}.db"));
        let client = Client::start(config(&base, &code, &event, &cache, label))?;
        client
            .wait_status(Duration::from_secs(10), |s| *s == Status::Live)
            .await?;
        let mut notices = client.notices();
        let me = coord
            .devices()
            .await?
            .into_iter()
            .find(|d| d.name == label)
            .context("the client is in the device list")?;
        ensure!(me.connections >= 1, "{label}: {me:?}");

        let t = Instant::now();
        let revoked = coord.revoke(&me.operator_id).await?;
        ensure!(revoked.device.revoked, "{revoked:?}");
        let s = client
            .wait_status(Duration::from_secs(1), signed_out)
            .await
            .with_context(|| format!("{label}: not signed out within 1 s of the revoke"))?;
        let took = t.elapsed();
        ensure!(
            s == Status::SignedOut {
                reason: REVOKED.into()
            },
            "{s:?}"
        );
        // The notice goes out with the status (another thread may still
        // be on its way to sending it).
        let saw_notice = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                match notices.recv().await {
                    Ok(Notice::SignedOut { reason }) => return reason == REVOKED,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return false,
                }
            }
        })
        .await
        .unwrap_or(false);
        ensure!(saw_notice, "{label}: no signed-out notice");
        println!("{label}: revoke to signed out in {} ms", took.as_millis());

        // Nothing more goes out or is queued from it.
        ensure!(
            client.submit(Op::StatsBust { count: 1 }).await.is_err(),
            "{label}: a signed-out client queued an op"
        );
        ensure!(client.pending().borrow().is_empty());
        let names_before = device_names(&coord).await?;
        client.refresh().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        ensure!(
            signed_out(&client.status().borrow()),
            "{label}: Refresh logged in"
        );
        client.shutdown().await;

        // A restart from the same cache: still signed out, at once, and no
        // new session was made behind the person's back.
        let client = Client::start(config(&base, &code, &event, &cache, label))?;
        let s = client
            .wait_status(Duration::from_secs(2), signed_out)
            .await
            .with_context(|| format!("{label}: a restart forgot the sign-out"))?;
        // Still "revoked", not a fresh failure to log in (the server would
        // take the long dealer code again: only this device's memory of the
        // revocation keeps it out).
        ensure!(
            s == Status::SignedOut {
                reason: REVOKED.into()
            },
            "{label}: after a restart {s:?}"
        );
        ensure!(
            client.replica().borrow().is_some(),
            "{label}: the cached state is still shown"
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
        ensure!(signed_out(&client.status().borrow()));
        let names_after = device_names(&coord).await?;
        ensure!(
            names_after.len() == names_before.len(),
            "{label}: a silent login made a new device: {names_before:?} → {names_after:?}"
        );
        client.shutdown().await;

        // And the Venue (what the app's screens call) says the same.
        let v = venue(&base, &code, label, "x", &cache)?;
        ensure!(matches!(v.events().await, Err(VenueError::SignedOut(r)) if r == REVOKED));
    }
    srv.shutdown().await;
    Ok(())
}

/// A client that lost its session and joined with a pairing code cannot use
/// the code again: it signs out with words that say so, once, and does not
/// keep trying (each try would count as a wrong code for its address).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_pairing_code_signs_out_instead_of_retrying() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = server(&dir.path().join("srv")).await?;
    let base = format!("https://{}", srv.local_addr());
    let event = srv.demo_event_id().context("demo")?.to_string();
    let coord = venue(&base, COORD, "Ana", "desk", &dir.path().join("c.db"))?;
    coord.login().await?;
    let code = coord.create_pairing(Role::Dealer).await?.code;
    // Someone else used the code first.
    venue(&base, &code, "First", "t1", &dir.path().join("f.db"))?
        .login()
        .await?;
    let late = Client::start(config(
        &base,
        &code,
        &event,
        &dir.path().join("late.db"),
        "Late",
    ))?;
    let s = late.wait_status(Duration::from_secs(5), signed_out).await?;
    ensure!(
        s == Status::SignedOut {
            reason: PAIRING_SPENT.into()
        },
        "{s:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    ensure!(signed_out(&late.status().borrow()), "it went on trying");
    late.shutdown().await;
    srv.shutdown().await;
    Ok(())
}

/// Floods ops from one client until the server throttles it, then checks
/// that every op was applied exactly once: none dropped, none shown as
/// refused, every throttled one sent again with its own op id.
async fn flood_until_throttled(
    client: &Client,
    srv: &pitboss_server::Server,
    event: &str,
) -> Result<()> {
    let before = srv
        .snapshot(event)
        .await
        .map_err(|e| anyhow::anyhow!(e.body.message))?
        .state
        .stats
        .entries;
    let mut notices = client.notices();
    let mut ids = Vec::new();
    let mut throttled = Vec::new();
    let mut rejected = Vec::new();
    let mut accepted = std::collections::HashSet::new();
    // Open loop, as a stuck button or a script would.
    for _ in 0..3_000 {
        ids.push(client.submit(Op::StatsEntry { count: 1 }).await?);
        while let Ok(n) = notices.try_recv() {
            match n {
                Notice::Throttled { op_id, .. } => throttled.push(op_id),
                Notice::Rejected { op_id, error, .. } => rejected.push((op_id, error)),
                Notice::Accepted { op_id, .. } => {
                    accepted.insert(op_id);
                }
                _ => {}
            }
        }
        if !throttled.is_empty() && ids.len() >= 50 {
            break;
        }
    }
    ensure!(
        !throttled.is_empty(),
        "{} ops in a burst were never throttled",
        ids.len()
    );
    // The outbox is the truth: an op leaves it only once the server answered
    // it for good (applied, or refused). Notices are read on the way to see
    // that nothing was refused; a lag only skips some of them.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !client.pending().borrow().is_empty() {
        ensure!(
            Instant::now() < deadline,
            "{} of {} ops still pending after 60 s",
            client.pending().borrow().len(),
            ids.len()
        );
        match tokio::time::timeout(Duration::from_millis(200), notices.recv()).await {
            Ok(Ok(Notice::Accepted { op_id, .. })) => {
                accepted.insert(op_id);
            }
            Ok(Ok(Notice::Throttled { op_id, .. })) => throttled.push(op_id),
            Ok(Ok(Notice::Rejected { op_id, error, .. })) => rejected.push((op_id, error)),
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) | Err(_) => {}
            Ok(Err(e)) => bail!("{e}"),
        }
    }
    while let Ok(n) = notices.try_recv() {
        if let Notice::Rejected { op_id, error, .. } = n {
            rejected.push((op_id, error));
        }
    }
    ensure!(rejected.is_empty(), "refused: {rejected:?}");
    ensure!(
        throttled.iter().all(|id| ids.contains(id)),
        "a throttled op id is not one we made"
    );
    let after = srv
        .snapshot(event)
        .await
        .map_err(|e| anyhow::anyhow!(e.body.message))?
        .state
        .stats
        .entries;
    ensure!(
        after - before == ids.len() as u64,
        "{} ops, entries went from {before} to {after}",
        ids.len()
    );
    println!(
        "{} ops: {} throttled answers, all applied once",
        ids.len(),
        throttled.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_op_waits_in_the_outbox_and_goes_again_with_its_op_id() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = server(&dir.path().join("srv")).await?;
    let base = format!("https://{}", srv.local_addr());
    let event = srv.demo_event_id().context("demo")?.to_string();
    let client = Client::start(config(
        &base,
        DEALER,
        &event,
        &dir.path().join("d.db"),
        "Dan",
    ))?;
    client
        .wait_status(Duration::from_secs(10), |s| *s == Status::Live)
        .await?;
    flood_until_throttled(&client, &srv, &event).await?;
    ensure!(
        *client.status().borrow() == Status::Live,
        "a throttle is not a disconnect"
    );
    client.shutdown().await;
    srv.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_http_fallback_a_throttled_op_also_waits_and_goes_again() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // One HTTP op per round trip stays under the default per-address rate
    // (40/s), so this server is stricter: what matters here is what the
    // client does with the answer, which is the same at any figure.
    let limits = pitboss_server::LimitConfig {
        ops_per_second_per_address: 5,
        ops_burst_per_address: 10,
        ops_per_second_per_connection: 5,
        ops_burst_per_connection: 10,
        ..pitboss_server::LimitConfig::default()
    };
    let srv = server_with(&dir.path().join("srv"), |c| c.limits = limits).await?;
    let event = srv.demo_event_id().context("demo")?.to_string();
    let proxy = common::terminating_proxy(&srv, &dir.path().join("srv")).await?;
    proxy.set_links(Link::wifi(2, 1));
    proxy.block_websocket_upgrades(true);
    let mut cfg = config(
        &format!("https://{}", proxy.addr()),
        DEALER,
        &event,
        &dir.path().join("d.db"),
        "Dan",
    );
    cfg.http_poll_every = Duration::from_millis(1_000);
    let client = Client::start(cfg)?;
    client
        .wait_status(Duration::from_secs(10), |s| {
            matches!(s, Status::Degraded { .. })
        })
        .await?;
    flood_until_throttled(&client, &srv, &event).await?;
    client.shutdown().await;
    srv.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_display_session_sends_and_queues_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = server(&dir.path().join("srv")).await?;
    let base = format!("https://{}", srv.local_addr());
    let event = srv.demo_event_id().context("demo")?.to_string();
    let coord = venue(&base, COORD, "Ana", "desk", &dir.path().join("c.db"))?;
    coord.login().await?;
    let code = coord.create_pairing(Role::Display).await?.code;
    let wall = Client::start(config(
        &base,
        &code,
        &event,
        &dir.path().join("w.db"),
        "Wall",
    ))?;
    wall.wait_status(Duration::from_secs(10), |s| *s == Status::Live)
        .await?;
    ensure!(
        wall.replica().borrow().is_some(),
        "a display reads the event"
    );
    let seq = srv
        .snapshot(&event)
        .await
        .map_err(|e| anyhow::anyhow!(e.body.message))?
        .seq;
    for op in [
        Op::ClockPause,
        Op::StatsBust { count: 1 },
        Op::StatsEntry { count: 1 },
    ] {
        ensure!(wall.submit(op).await.is_err(), "a display queued an op");
    }
    ensure!(wall.pending().borrow().is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = srv
        .snapshot(&event)
        .await
        .map_err(|e| anyhow::anyhow!(e.body.message))?
        .seq;
    ensure!(
        after == seq,
        "the display changed the event: {seq} → {after}"
    );
    ensure!(coord
        .audit(&event, None, None)
        .await?
        .iter()
        .all(|e| e.name != "Wall"));
    wall.shutdown().await;
    srv.shutdown().await;
    Ok(())
}

/// What was done, in order, comes back from the audit trail newest first,
/// with who and from which device; one incident's history only holds its
/// own changes; `limit` and the CSV agree with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_says_who_did_what_in_order() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = server(&dir.path().join("srv")).await?;
    let base = format!("https://{}", srv.local_addr());
    let event = srv.demo_event_id().context("demo")?.to_string();
    let coord_v = venue(&base, COORD, "Ana", "desk", &dir.path().join("cv.db"))?;
    coord_v.login().await?;
    let start = coord_v.audit(&event, None, None).await?.len();
    let ana = Client::start(config(
        &base,
        COORD,
        &event,
        &dir.path().join("a.db"),
        "Ana",
    ))?;
    let dan = Client::start(config(
        &base,
        DEALER,
        &event,
        &dir.path().join("d.db"),
        "Dan",
    ))?;
    for c in [&ana, &dan] {
        c.wait_status(Duration::from_secs(10), |s| *s == Status::Live)
            .await?;
    }
    let ok = |o: Outcome| match o {
        Outcome::Accepted { seq } => Ok(seq),
        o => bail!("{o:?}"),
    };
    let within = Duration::from_secs(5);
    let mut done = Vec::new();
    done.push((
        "Ana",
        ok(ana
            .submit_and_wait(Op::ClockAdjust { delta_ms: 300_000 }, within)
            .await?)?,
    ));
    done.push((
        "Dan",
        ok(dan
            .submit_and_wait(Op::StatsBust { count: 2 }, within)
            .await?)?,
    ));
    let created = ok(dan
        .submit_and_wait(
            Op::IncidentCreate {
                table: "4".into(),
                kind: "Misdeal".into(),
                severity: pitboss_core::Severity::High,
                note: "two cards exposed".into(),
            },
            within,
        )
        .await?)?;
    done.push(("Dan", created));
    let mut rx = ana.replica();
    let inc = tokio::time::timeout(within, async {
        loop {
            if let Some(i) = rx
                .borrow_and_update()
                .as_ref()
                .and_then(|r| r.state.incidents.iter().find(|i| i.table == "4").cloned())
            {
                return anyhow::Ok(i);
            }
            rx.changed().await?;
        }
    })
    .await
    .context("the incident reached Ana")??;
    done.push((
        "Ana",
        ok(ana
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
                within,
            )
            .await?)?,
    ));

    let trail = coord_v.audit(&event, None, None).await?;
    ensure!(trail.len() == start + done.len(), "{} entries", trail.len());
    let newest: Vec<(String, u64)> = trail
        .iter()
        .take(done.len())
        .map(|e| (e.name.clone(), e.seq))
        .collect();
    let expected: Vec<(String, u64)> = done
        .iter()
        .rev()
        .map(|(n, s)| (n.to_string(), *s))
        .collect();
    ensure!(newest == expected, "{newest:?} != {expected:?}");
    let adjust = trail
        .iter()
        .find(|e| e.seq == done[0].1)
        .context("adjust")?;
    ensure!(adjust.device == "Ana-laptop" && adjust.role == Role::Coordinator);
    ensure!(
        adjust.summary.starts_with("added 5:00 to level"),
        "{}",
        adjust.summary
    );
    let history = coord_v.audit(&event, Some(&inc.id), None).await?;
    let seqs: Vec<u64> = history.iter().map(|e| e.seq).collect();
    ensure!(seqs == vec![done[3].1, done[2].1], "history {seqs:?}");
    ensure!(history
        .iter()
        .all(|e| e.incident_id.as_deref() == Some(inc.id.as_str())));
    let two = coord_v.audit(&event, None, Some(2)).await?;
    ensure!(two.len() == 2 && two[0].seq == done[3].1);

    let csv = coord_v.audit_csv(&event).await?;
    let header = csv.lines().next().unwrap_or_default();
    ensure!(
        header
            == "seq,time_utc,at_ms,name,device,role,address,operator_id,op_id,op,summary,incident_id,before,after",
        "{header}"
    );
    for e in trail.iter().take(done.len()) {
        ensure!(
            csv.lines()
                .any(|l| l.starts_with(&format!("{},", e.seq)) && l.contains(&e.op_id)),
            "no CSV row for seq {}",
            e.seq
        );
    }
    // A dealer may not read it.
    let dealer_v = venue(&base, DEALER, "Dan", "t", &dir.path().join("dv.db"))?;
    dealer_v.login().await?;
    ensure!(matches!(
        dealer_v.audit(&event, None, None).await,
        Err(VenueError::Refused { status: 403, .. })
    ));
    ana.shutdown().await;
    dan.shutdown().await;
    srv.shutdown().await;
    Ok(())
}

/// Ops made while the host was down are recorded once each when the outbox
/// replays them, under the device that made them and with the op ids it
/// made, although the host restarted in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_replayed_from_the_outbox_are_audited_once_with_their_device() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("srv");
    let srv = server(&data).await?;
    let addr = srv.local_addr();
    let base = format!("https://{addr}");
    let event = srv.demo_event_id().context("demo")?.to_string();
    let dan = Client::start(config(
        &base,
        DEALER,
        &event,
        &dir.path().join("d.db"),
        "Dan",
    ))?;
    dan.wait_status(Duration::from_secs(10), |s| *s == Status::Live)
        .await?;
    srv.shutdown().await;
    dan.wait_status(Duration::from_secs(5), |s| {
        matches!(s, Status::Reconnecting { .. } | Status::Offline { .. })
    })
    .await?;
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(dan.submit(Op::StatsBust { count: 1 }).await?);
    }
    // Back on the same address and store.
    let mut c = pitboss_server::Config::new(addr, data.clone());
    c.coordinator_code = Some(COORD.into());
    c.dealer_code = Some(DEALER.into());
    c.synchronous = pitboss_server::Synchronous::Normal;
    let srv = pitboss_server::start(c).await?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !dan.pending().borrow().is_empty() {
        ensure!(Instant::now() < deadline, "the outbox never emptied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let coord = venue(&base, COORD, "Ana", "desk", &dir.path().join("c.db"))?;
    coord.login().await?;
    let trail = coord.audit(&event, None, None).await?;
    for id in &made {
        let hits: Vec<_> = trail.iter().filter(|e| &e.op_id == id).collect();
        ensure!(hits.len() == 1, "op {id} recorded {} times", hits.len());
        ensure!(
            hits[0].name == "Dan" && hits[0].device == "Dan-laptop",
            "{:?}",
            hits[0]
        );
        ensure!(
            hits[0].summary.starts_with("reported 1 bust-out"),
            "{}",
            hits[0].summary
        );
    }
    dan.shutdown().await;
    srv.shutdown().await;
    Ok(())
}
