//! Offline work that outlives the app (rule 10 of docs/architecture.md): a dealer's client loses the
//! host, records bust-outs and incidents, is killed with `kill -9` and
//! started again while the host is still away, and the host itself is killed
//! and restarted. When the host is back, every pending op is applied exactly
//! once, in order; the one that conflicts with an edit made meanwhile is
//! reported with the current record; nothing is lost.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use pitboss_faultproxy::Proxy;
use pitboss_system_tests::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_ops_survive_a_killed_client_and_host_and_apply_exactly_once() -> Result<()> {
    let data = tempfile::tempdir()?;
    let caches = tempfile::tempdir()?;
    let cache = caches.path().join("dealer.sqlite");
    let port = free_port()?;
    let server = ServerProc::start(data.path(), port, &[]).await?;
    let event = server.demo_event.clone();
    let director = Device::login(&server.base, COORD_CODE, "Director").await?;
    // The dealer reaches the host through the venue's Wi-Fi, which the test
    // can take away.
    let wifi = Proxy::start(format!("127.0.0.1:{port}").parse()?).await?;
    let args = ["--ping-every-ms", "500", "--backoff-max-ms", "500"];
    let mut dealer =
        Follower::start("dealer", &wifi.url(), DEALER_CODE, &event, &cache, &args).await?;
    dealer.wait_live(Duration::from_secs(10)).await?;

    let (st, body) = director
        .op(
            &event,
            json!({"type": "incident.create", "table": "4", "kind": "Misdeal",
                   "severity": "low", "note": "seat 2"}),
        )
        .await?;
    ensure!(st == 200, "create: {body}");
    let incident = body["result"]["incident"]["id"]
        .as_str()
        .context("incident id")?
        .to_string();
    dealer
        .wait_seq(body["seq"].as_u64().context("seq")?, Duration::from_secs(5))
        .await?;
    let before = snapshot(&director, &event).await?;
    let players_before = before["state"]["stats"]["players_remaining"]
        .as_u64()
        .context("players")?;

    // The Wi-Fi goes: nothing new gets through, the open socket is reset.
    wifi.refuse_new();
    wifi.reset_current();
    dealer
        .wait_state(Duration::from_secs(5), |s| s["status"]["state"] != "live")
        .await?;

    // Offline work: three bust-outs, a new incident, an edit of the old one.
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(dealer.op(json!({"type": "stats.bust", "count": 1})).await?);
    }
    mine.push(
        dealer
            .op(
                json!({"type": "incident.create", "table": "11", "kind": "Clock dispute",
                       "severity": "medium", "note": "raised offline"}),
            )
            .await?,
    );
    let stale_edit = dealer
        .op(
            json!({"type": "incident.update", "incident_id": incident, "base_version": 1,
                   "status": "acknowledged", "note": "dealer: on it"}),
        )
        .await?;
    mine.push(stale_edit.clone());
    // Meanwhile the director edits the same incident on the host.
    let (st, body) = director
        .op(
            &event,
            json!({"type": "incident.update", "incident_id": incident, "base_version": 1,
                   "note": "director: dead hand"}),
        )
        .await?;
    ensure!(st == 200, "director's edit: {body}");

    let s = dealer.state().await?;
    ensure!(
        s["pending"] == json!(mine),
        "pending shown before the kill: {}",
        s["pending"]
    );
    // The app dies, and so does the host.
    dealer.kill9().await?;
    server.kill9().await?;

    // The app starts again with the host still gone: the last known state
    // and every pending op, in order.
    let mut dealer =
        Follower::start("dealer", &wifi.url(), DEALER_CODE, &event, &cache, &args).await?;
    let s = dealer.state().await?;
    ensure!(s["status"]["state"] != "live", "live with no host: {s}");
    ensure!(
        s["seq"] == before["seq"],
        "cached state after restart: seq {} (had {})",
        s["seq"],
        before["seq"]
    );
    ensure!(
        s["pending"] == json!(mine),
        "pending after restart: {}",
        s["pending"]
    );

    // The host comes back on the same data; the Wi-Fi heals.
    let server = ServerProc::start(data.path(), port, &[]).await?;
    let director = Device::login(&server.base, COORD_CODE, "Director").await?;
    wifi.heal();
    let s = dealer
        .wait_state(Duration::from_secs(10), |s| {
            s["status"]["state"] == "live" && s["pending"] == json!([])
        })
        .await?;

    // What the dealer was told about each op.
    let mut outcome: HashMap<String, Value> = HashMap::new();
    for l in dealer.lines() {
        if l["kind"] == "accepted" || l["kind"] == "rejected" {
            let id = l["op_id"].as_str().unwrap_or_default().to_string();
            ensure!(
                outcome.insert(id.clone(), l.clone()).is_none(),
                "told twice about {id}"
            );
        }
    }
    for id in &mine[..4] {
        ensure!(
            outcome.get(id).is_some_and(|l| l["kind"] == "accepted"),
            "{id}: {:?}",
            outcome.get(id)
        );
    }
    let refusal = outcome
        .get(&stale_edit)
        .context("the stale edit was never answered")?;
    ensure!(
        refusal["kind"] == "rejected" && refusal["error"] == "conflict",
        "the stale edit: {refusal}"
    );
    ensure!(
        refusal["current"]["lock_version"] == 2
            && refusal["current"]["note"] == "director: dead hand",
        "the refusal carries the current record: {refusal}"
    );

    // The server applied each exactly once, in the order they were made.
    let after = snapshot(&director, &event).await?;
    ensure!(
        s["seq"] == after["seq"] && s["state"] == after["state"],
        "dealer converged"
    );
    ensure!(
        after["state"]["stats"]["players_remaining"] == json!(players_before - 3),
        "three bust-outs, once each: {}",
        after["state"]["stats"]
    );
    let incidents = after["state"]["incidents"]
        .as_array()
        .context("incidents")?;
    ensure!(
        incidents
            .iter()
            .filter(|i| i["note"] == "raised offline")
            .count()
            == 1,
        "the offline incident exists once: {incidents:?}"
    );
    let old = incidents
        .iter()
        .find(|i| i["id"] == incident.as_str())
        .context("the old incident")?;
    ensure!(
        old["note"] == "director: dead hand" && old["status"] == "open",
        "nothing merged into the director's edit: {old}"
    );
    let changes = director
        .get(&format!(
            "/api/events/{event}/changes?after={}",
            before["seq"]
        ))
        .await?;
    let applied: Vec<&str> = changes["changes"]
        .as_array()
        .context("changes")?
        .iter()
        .filter_map(|c| c["op_id"].as_str())
        .filter(|id| mine.iter().any(|m| m == id))
        .collect();
    ensure!(
        applied == mine[..4].iter().map(String::as_str).collect::<Vec<_>>(),
        "applied: {applied:?}, made: {mine:?}"
    );
    eprintln!(
        "offline: 5 ops made, client and host killed, 4 applied once in order, 1 conflict reported with v2"
    );
    dealer.quit().await?;
    drop(server);
    Ok(())
}
