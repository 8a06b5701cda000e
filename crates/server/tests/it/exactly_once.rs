//! Exactly-once ops: a retried op id changes nothing and gets the same answer,
//! on either transport.

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use crate::common::*;

async fn entries(http: &Http, event: &str) -> Result<u64> {
    Ok(http.snapshot(event).await?["state"]["stats"]["entries"]
        .as_u64()
        .unwrap_or(0))
}

async fn ws_op(ws: &mut Ws, event: &str, op_id: &str, op: Value) -> Result<Value> {
    ws.send(json!({"type": "op", "op_id": op_id, "event_id": event, "op": op}))
        .await?;
    loop {
        let v = ws.next().await?;
        if (v["type"] == "ack" || v["type"] == "rejected") && v["op_id"] == op_id {
            return Ok(v);
        }
    }
}

/// The fields an HTTP answer and a WebSocket ack share.
fn answer(v: &Value) -> Value {
    json!({"op_id": v["op_id"], "seq": v["seq"], "result": v["result"]})
}

#[tokio::test]
async fn the_same_op_id_twice_has_one_effect_and_one_answer() -> Result<()> {
    let server = TestServer::start(&[])?;
    let http = server.login(DEALER, "Ben").await?;
    let coord = server.login(COORD, "Ana").await?;
    let event = server.long_event(&coord, "Once").await?;
    let op = json!({"type": "stats.entry", "count": 3});

    // HTTP then HTTP.
    let id = new_op_id();
    let (s1, a1) = http.op(&event, &id, op.clone()).await?;
    let (s2, a2) = http.op(&event, &id, op.clone()).await?;
    ensure!(s1 == 200 && s2 == 200 && a1 == a2, "{a1} / {a2}");
    ensure!(entries(&http, &event).await? == 3);

    // WebSocket then WebSocket, on two different connections.
    let id = new_op_id();
    let mut w1 = http.ws().await?;
    let mut w2 = http.ws().await?;
    let b1 = ws_op(&mut w1, &event, &id, op.clone()).await?;
    let b2 = ws_op(&mut w2, &event, &id, op.clone()).await?;
    ensure!(b1["type"] == "ack" && b1 == b2, "{b1} / {b2}");
    ensure!(entries(&http, &event).await? == 6);

    // One of each, both orders.
    let id = new_op_id();
    let (s, h) = http.op(&event, &id, op.clone()).await?;
    let w = ws_op(&mut w1, &event, &id, op.clone()).await?;
    ensure!(s == 200 && answer(&h) == answer(&w), "{h} / {w}");
    let id = new_op_id();
    let w = ws_op(&mut w2, &event, &id, op.clone()).await?;
    let (s, h) = http.op(&event, &id, op.clone()).await?;
    ensure!(s == 200 && answer(&h) == answer(&w), "{h} / {w}");
    ensure!(entries(&http, &event).await? == 12);

    // A rejection is remembered too: the retry gets the same refusal even
    // after the state changed in a way that would now let it through.
    let id = new_op_id();
    let bust = json!({"type": "stats.bust", "count": 13});
    let (s, r1) = http.op(&event, &id, bust.clone()).await?;
    ensure!(s == 400 && r1["error"] == "invalid", "{r1}");
    let (s, _) = http
        .op(
            &event,
            &new_op_id(),
            json!({"type": "stats.entry", "count": 10}),
        )
        .await?;
    ensure!(s == 200);
    let (s, r2) = http.op(&event, &id, bust).await?;
    ensure!(s == 400 && r1 == r2, "{r1} / {r2}");
    ensure!(http.snapshot(&event).await?["state"]["stats"]["players_remaining"] == 22);

    // An op id reused for a different op is refused, not applied.
    let (s, v) = http.op(&event, &id, json!({"type": "stats.entry"})).await?;
    ensure!(
        s == 400
            && v["message"]
                .as_str()
                .context("message")?
                .contains("already used"),
        "{v}"
    );
    ensure!(entries(&http, &event).await? == 22);
    Ok(())
}
