//! Bad input of every kind: a clear error each, the connection and the
//! server stay up, and nothing stored changes.

use anyhow::{ensure, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;

#[tokio::test]
async fn bad_http_requests_get_clear_errors_and_change_nothing() -> Result<()> {
    let server = TestServer::start(&["--demo"])?;
    let coord = server.login(COORD, "Ana").await?;
    let dealer = server.login(DEALER, "Ben").await?;
    let event = server.demo_event.clone().context("demo event")?;
    let (s, created) = dealer
        .op(&event, &new_op_id(), json!({"type": "incident.create", "table": "4", "kind": "chip race", "severity": "low"}))
        .await?;
    ensure!(s == 200, "{created}");
    let before = coord.state(&event).await?;
    let ops = format!("/api/events/{event}/ops");
    let big = "x".repeat(70 * 1024);

    // (who, path, body, expected status, expected error code, words the message must contain)
    let cases: Vec<(&Http, String, String, u16, &str, &str)> = vec![
        (&coord, ops.clone(), "{\"op_id\": \"a\", \"op\": ".into(), 400, "invalid", "malformed JSON"),
        (&coord, ops.clone(), "[1,2,3]".into(), 400, "invalid", "malformed JSON"),
        (&coord, ops.clone(), json!({"op_id": "b", "op": {"type": "clock.explode"}}).to_string(), 400, "invalid", "unknown variant"),
        (&coord, ops.clone(), json!({"op_id": "c", "op": {"type": "clock.adjust"}}).to_string(), 400, "invalid", "missing field `delta_ms`"),
        (&coord, ops.clone(), json!({"op": {"type": "clock.start"}}).to_string(), 400, "invalid", "missing field `op_id`"),
        (&coord, ops.clone(), json!({"op_id": "d", "op": {"type": "stats.bust", "count": -3}}).to_string(), 400, "invalid", "invalid value"),
        (&coord, ops.clone(), json!({"op_id": "e", "op": {"type": "stats.entry", "count": 0}}).to_string(), 400, "invalid", "count must be"),
        (&coord, ops.clone(), json!({"op_id": "f", "op": {"type": "clock.set_level", "level_index": 99}}).to_string(), 400, "invalid", "out of range"),
        (&coord, ops.clone(), json!({"op_id": "g", "op": {"type": "incident.create", "table": "", "kind": "x", "severity": "low"}}).to_string(), 400, "invalid", "table must not be empty"),
        (&coord, ops.clone(), json!({"op_id": "h", "op": {"type": "incident.create", "table": "1", "kind": "x", "severity": "apocalyptic"}}).to_string(), 400, "invalid", "unknown variant"),
        (&coord, ops.clone(), json!({"op_id": "i", "op": {"type": "incident.create", "table": "1", "kind": "x", "severity": "low", "note": "n".repeat(2001)}}).to_string(), 400, "invalid", "longer than"),
        (&coord, ops.clone(), json!({"op_id": "has space", "op": {"type": "clock.start"}}).to_string(), 400, "invalid", "op_id"),
        (&coord, ops.clone(), json!({"op_id": "j", "op": {"type": "structure.update", "base_version": 1, "levels": []}}).to_string(), 400, "invalid", "at least one level"),
        (&coord, "/api/events/ev-nope/ops".into(), json!({"op_id": "k", "op": {"type": "clock.start"}}).to_string(), 404, "not_found", "no event"),
        (&coord, ops.clone(), json!({"op_id": "l", "op": {"type": "incident.update", "incident_id": "inc-999", "base_version": 1, "note": "x"}}).to_string(), 404, "not_found", "no incident"),
        (&dealer, ops.clone(), json!({"op_id": "m", "op": {"type": "clock.adjust", "delta_ms": 60000}}).to_string(), 403, "forbidden", "dealer"),
        (&dealer, ops.clone(), json!({"op_id": "n", "op": {"type": "structure.update", "base_version": 1, "levels": [{"kind": "level", "small_blind": 1, "big_blind": 2, "duration_ms": 60000}]}}).to_string(), 403, "forbidden", "dealer"),
        (&dealer, "/api/events".into(), json!({"name": "Mine", "structure": {"levels": []}}).to_string(), 403, "forbidden", "coordinator"),
        (&coord, "/api/events".into(), json!({"name": "", "structure": {"levels": [{"kind": "level", "small_blind": 1, "big_blind": 2, "duration_ms": 60000}]}}).to_string(), 400, "invalid", "name"),
        (&coord, ops.clone(), format!("{{\"op_id\": \"o\", \"op\": {{\"type\": \"incident.create\", \"table\": \"1\", \"kind\": \"x\", \"severity\": \"low\", \"note\": \"{big}\"}}}}"), 413, "too_large", "larger than"),
    ];
    for (who, path, body, status, code, words) in cases {
        let (s, v) = who
            .post_raw(&path, body.chars().take(200_000).collect())
            .await?;
        ensure!(
            s == status && v["error"] == code,
            "{path} {}: got {s} {v}",
            &body[..body.len().min(120)]
        );
        let msg = v["message"].as_str().unwrap_or_default();
        ensure!(
            msg.contains(words),
            "message {msg:?} should mention {words:?}"
        );
    }

    // Wrong join code, no token, bad token, bad query, unknown endpoint.
    let anon = server.http_client()?;
    let r = anon
        .post(server.url("/api/session"))
        .json(&json!({"join_code": "WRONG-CODE"}))
        .send()
        .await?;
    ensure!(r.status() == 401);
    let v: Value = r.json().await?;
    ensure!(
        v["error"] == "unauthorized" && v["message"] == "wrong join code",
        "{v}"
    );
    let r = anon
        .get(server.url(&format!("/api/events/{event}/snapshot")))
        .send()
        .await?;
    ensure!(r.status() == 401);
    let r = anon
        .get(server.url("/api/events"))
        .bearer_auth("not-a-token")
        .send()
        .await?;
    ensure!(r.status() == 401);
    let (s, v) = coord
        .get(&format!("/api/events/{event}/changes?after=abc"))
        .await?;
    ensure!(s == 400 && v["error"] == "invalid", "{v}");
    let (s, v) = coord.get(&format!("/api/events/{event}/changes")).await?;
    ensure!(s == 400 && v["error"] == "invalid", "{v}");
    let (s, v) = coord.get("/api/nothing-here").await?;
    ensure!(s == 404 && v["error"] == "not_found");
    let (s, _) = coord.get("/api/events/ev-nope/snapshot").await?;
    ensure!(s == 404);

    ensure!(coord.state(&event).await? == before, "stored state changed");
    let (s, _) = coord.get("/api/health").await?;
    ensure!(s == 200, "server is still up");
    Ok(())
}

#[tokio::test]
async fn bad_websocket_frames_get_clear_errors_and_the_socket_stays_up() -> Result<()> {
    let server = TestServer::start(&["--demo"])?;
    let coord = server.login(COORD, "Ana").await?;
    let dealer = server.login(DEALER, "Ben").await?;
    let event = server.demo_event.clone().context("demo event")?;
    let before = coord.state(&event).await?;
    let mut ws = dealer.ws().await?;

    // Frames the server cannot take at all: an `error` frame.
    for (text, words) in [
        ("{not json".to_string(), "cannot read this frame"),
        (json!({"type": "dance"}).to_string(), "unknown variant"),
        (
            json!({"type": "op", "event_id": event, "op": {"type": "stats.bust"}}).to_string(),
            "missing field `op_id`",
        ),
        (
            json!({"type": "subscribe"}).to_string(),
            "missing field `event_id`",
        ),
    ] {
        ws.send_text(text.clone()).await?;
        let v = ws.next().await?;
        ensure!(
            v["type"] == "error" && v["error"] == "invalid",
            "{text}: {v}"
        );
        ensure!(
            v["message"].as_str().unwrap_or_default().contains(words),
            "{text}: {v}"
        );
        ws.ping().await?;
    }
    ws.stream
        .send(Message::Binary(vec![1u8, 2, 3].into()))
        .await?;
    let v = ws.next().await?;
    ensure!(v["type"] == "error" && v["message"].as_str().unwrap_or_default().contains("binary"));
    ws.send(json!({"type": "subscribe", "event_id": "ev-nope", "after": null}))
        .await?;
    let v = ws.next().await?;
    ensure!(v["type"] == "error" && v["error"] == "not_found", "{v}");

    // Ops the server can read but must refuse: a `rejected` naming the op.
    for (op, code) in [
        (json!({"type": "clock.explode"}), "invalid"),
        (json!({"type": "stats.bust", "count": -1}), "invalid"),
        (json!({"type": "stats.bust", "count": 10_000}), "invalid"),
        (
            json!({"type": "clock.adjust", "delta_ms": -60000}),
            "forbidden",
        ),
        (json!({"type": "clock.pause"}), "forbidden"),
        (
            json!({"type": "incident.update", "incident_id": "inc-404", "base_version": 1, "status": "resolved"}),
            "not_found",
        ),
    ] {
        let id = new_op_id();
        ws.send(json!({"type": "op", "op_id": id, "event_id": event, "op": op}))
            .await?;
        let v = ws.next().await?;
        ensure!(
            v["type"] == "rejected" && v["op_id"] == id.as_str() && v["error"] == code,
            "{op}: {v}"
        );
    }
    let id = new_op_id();
    ws.send(
        json!({"type": "op", "op_id": id, "event_id": "ev-nope", "op": {"type": "stats.entry"}}),
    )
    .await?;
    let v = ws.next().await?;
    ensure!(v["type"] == "rejected" && v["error"] == "not_found", "{v}");
    ws.ping().await?;

    // An oversized frame closes that socket with 1009; the server stays up.
    let big = json!({"type": "op", "op_id": "big", "event_id": event, "op": {"type": "incident.create", "table": "1", "kind": "x", "severity": "low", "note": "x".repeat(70 * 1024)}});
    ws.send(big).await?;
    let mut code = None;
    while let Some(m) = ws.stream.next().await {
        match m {
            Ok(Message::Close(Some(c))) => {
                code = Some(u16::from(c.code));
                break;
            }
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    ensure!(code == Some(1009), "close code {code:?}");
    let mut again = dealer.ws().await?;
    again.ping().await?;

    ensure!(coord.state(&event).await? == before, "stored state changed");
    Ok(())
}

#[tokio::test]
async fn text_with_quotes_and_sql_is_stored_verbatim() -> Result<()> {
    let server = TestServer::start(&[])?;
    let coord = server.login(COORD, "O'Brien \"Bob\"").await?;
    let event = server.long_event(&coord, "Quotes").await?;
    let nasty = "Robert'); DROP TABLE incidents;-- \"quoted\" \\ back\\slash %s {} ♠♥ 🂡\nline two";
    let (s, v) = coord
        .op(&event, &new_op_id(), json!({"type": "incident.create", "table": "7'; --", "kind": "\"angle\" shot", "severity": "high", "note": nasty}))
        .await?;
    ensure!(s == 200, "{v}");
    let snap = coord.snapshot(&event).await?;
    let inc = &snap["state"]["incidents"][0];
    ensure!(
        inc["note"] == nasty && inc["table"] == "7'; --" && inc["kind"] == "\"angle\" shot",
        "{inc}"
    );
    ensure!(inc["created_by"] == "O'Brien \"Bob\"");
    // The tables are all still there and working.
    let (s, _) = coord
        .op(&event, &new_op_id(), json!({"type": "incident.update", "incident_id": inc["id"], "base_version": 1, "status": "resolved"}))
        .await?;
    ensure!(s == 200);
    let (s, v) = coord.get("/api/events").await?;
    ensure!(s == 200 && v["events"].as_array().map(Vec::len) == Some(1));
    Ok(())
}

#[tokio::test]
async fn a_client_that_closes_gets_the_close_answered() -> Result<()> {
    let server = TestServer::start(&["--demo"])?;
    let dealer = server.login(DEALER, "Ben").await?;
    let mut ws = dealer.ws().await?;
    ws.stream.close(None).await?;
    // The server answers the close frame, then ends the connection.
    let answer = tokio::time::timeout(std::time::Duration::from_secs(3), ws.stream.next()).await?;
    ensure!(
        matches!(answer, Some(Ok(Message::Close(_))) | None),
        "expected the close handshake, got {answer:?}"
    );
    ensure!(
        !matches!(answer, Some(Err(_))),
        "the connection ended abnormally: {answer:?}"
    );
    Ok(())
}
