//! The JSON the UI reads, pinned: a renamed field or event here would
//! leave a screen blank without any error.

use super::*;
use serde_json::json;

fn to_json(v: &impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// ui/lib/status.js reads state, reason, sinceMs, nextAttemptAtMs,
/// lastSyncedMs and pending; every key is sent, null when it does not
/// apply.
#[test]
fn the_status_keeps_the_shape_the_ui_reads() {
    let v = |s: &Status| to_json(&StatusView::new(s, Some(9), 2, "http://h:7878"));
    let base = |state: &str, reason: Value, since: Value, next: Value| {
        json!({"state": state, "reason": reason, "sinceMs": since, "nextAttemptAtMs": next,
               "lastSyncedMs": 9, "pending": 2, "server": "http://h:7878"})
    };
    let n = Value::Null;
    assert_eq!(
        v(&Status::Connecting),
        base("connecting", n.clone(), n.clone(), n.clone())
    );
    let changed = v(&Status::KeyChanged {
        pinned: "AAAA".into(),
        offered: "BBBB".into(),
        next_attempt_at_ms: 7,
    });
    assert_eq!(changed["state"], "key_changed");
    assert_eq!(changed["nextAttemptAtMs"], 7);
    let reason = changed["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with(pitboss_client::venue::KEY_CHANGED)
            && reason.contains("AAAA")
            && reason.contains("BBBB"),
        "{reason}"
    );
    assert_eq!(
        v(&Status::Live),
        base("live", n.clone(), n.clone(), n.clone())
    );
    assert_eq!(
        v(&Status::Reconnecting {
            next_attempt_at_ms: 5,
            since_ms: 3
        }),
        base("reconnecting", n.clone(), json!(3), json!(5))
    );
    assert_eq!(
        v(&Status::Offline {
            since_ms: 3,
            next_attempt_at_ms: 5
        }),
        base("offline", n.clone(), json!(3), json!(5))
    );
    assert_eq!(
        v(&Status::Degraded { since_ms: 3 }),
        base("degraded", n.clone(), json!(3), n.clone())
    );
    assert_eq!(
        v(&Status::SignedOut {
            reason: "revoked".into()
        }),
        base("signed_out", json!("revoked"), n.clone(), n)
    );
    let never = to_json(&StatusView::new(&Status::Live, None, 0, "s"));
    assert_eq!(never["lastSyncedMs"], Value::Null);
}

fn replica() -> Replica {
    crate::fixtures::replica("ev-1", 7)
}

/// The event's own records go out as the server's (snake_case); the
/// envelope around them is camelCase (ui/lib/store.js, the console,
/// the incident board).
#[test]
fn the_event_state_keeps_the_shape_the_ui_reads() {
    let r = replica();
    let op = Op::StatsBust { count: 1 };
    let pending = [PendingOp {
        op_id: "op-1".into(),
        event_id: "ev-1".into(),
        op: op.clone(),
        created_at_ms: 42,
    }];
    let v = to_json(&EventView::new(&r, &pending, Some(9), Some("dealer")));
    assert_eq!(
        v,
        json!({
            "eventId": "ev-1",
            "seq": 7,
            "details": to_json(&r.state.event),
            "clock": to_json(&r.state.clock),
            "structure": to_json(&r.state.structure),
            "stats": to_json(&r.state.stats),
            "incidents": [],
            "pending": [{"opId": "op-1", "op": to_json(&op), "createdAtMs": 42}],
            "lastSyncedMs": 9,
            "role": "dealer",
        })
    );
    assert_eq!(v["details"]["starting_stack"], 20_000);
    assert_eq!(v["pending"][0]["op"]["type"], "stats.bust");
    let v = to_json(&EventView::new(&r, &[], None, None));
    assert_eq!(
        (&v["lastSyncedMs"], &v["role"]),
        (&Value::Null, &Value::Null)
    );
}

/// ui/lib/store.js reduces notices by `kind` and reads these fields.
#[test]
fn notices_keep_the_shape_the_ui_reads() {
    use pitboss_client::Notice;
    let n = |e: Notice| NoticeView::from_engine(&e).map(|v| to_json(&v));
    assert_eq!(
        n(Notice::Accepted {
            op_id: "a".into(),
            seq: 3
        }),
        Some(json!({"kind": "accepted", "opId": "a", "seq": 3}))
    );
    let op = Op::StatsBust { count: 2 };
    assert_eq!(
        n(Notice::Rejected {
            op_id: "a".into(),
            error: "conflict".into(),
            message: "m".into(),
            current: Some(json!({"x": 1})),
            op: Some(op.clone()),
        }),
        Some(
            json!({"kind": "rejected", "opId": "a", "error": "conflict", "message": "m",
                    "current": {"x": 1}, "op": to_json(&op)})
        )
    );
    assert_eq!(
        n(Notice::Rejected {
            op_id: "a".into(),
            error: "invalid".into(),
            message: "m".into(),
            current: None,
            op: None,
        }),
        Some(
            json!({"kind": "rejected", "opId": "a", "error": "invalid", "message": "m",
                    "current": null, "op": null})
        )
    );
    assert_eq!(
        n(Notice::Throttled {
            op_id: "a".into(),
            retry_after_ms: 500
        }),
        Some(json!({"kind": "throttled", "opId": "a", "retryAfterMs": 500}))
    );
    assert_eq!(
        n(Notice::SignedOut { reason: "r".into() }),
        Some(json!({"kind": "signed_out", "reason": "r"}))
    );
    // What only moves the screens is not a notice for the person.
    assert_eq!(n(Notice::Snapshot { seq: 1 }), None);
    assert_eq!(n(Notice::CaughtUp { seq: 1 }), None);
    assert_eq!(n(Notice::WallClockSet { by_ms: 5 }), None);

    assert_eq!(
        to_json(&NoticeView::Alert {
            sound: Sound::BreakStart,
            title: "Break".into()
        }),
        json!({"kind": "alert", "sound": "break_start", "title": "Break"})
    );
    assert_eq!(
        to_json(&NoticeView::Banner {
            message: "hi".into()
        }),
        json!({"kind": "banner", "message": "hi"})
    );
    let r = replica();
    let st = SleptThrough {
        level_index: 0,
        is_break: false,
        started_at_ms: Some(1_000),
        away_ms: 60_000,
        away: Away::Asleep,
    };
    assert_eq!(
        to_json(&NoticeView::slept_through(&st, &r.state.structure)),
        json!({"kind": "slept_through", "levelNumber": 1, "isBreak": false,
               "startedAtMs": 1_000, "awayMs": 60_000, "away": "asleep"})
    );
}

/// ui/lib/store.js screenFor and ui/lib/status.js hostText read these.
#[test]
fn the_app_view_keeps_the_shape_the_ui_reads() {
    let v = to_json(&AppView {
        mode: Mode::Host,
        server: Some("https://127.0.0.1:7878".into()),
        role: Some("coordinator".into()),
        event_id: None,
        host: Some(HostInfo {
            port: 7878,
            addresses: vec!["10.0.0.2:7878".into()],
            coordinator_code: "C".into(),
            dealer_code: "D".into(),
            display_code: Some("W".into()),
            key_fingerprint: "3F2A 91C0 7BE4 D215 0C9E".into(),
        }),
        signed_out: None,
        server_key: Some("3F2A 91C0 7BE4 D215 0C9E".into()),
        settings: Settings::default(),
        sound: SoundState {
            available: false,
            message: "no device".into(),
        },
    });
    assert_eq!(
        v,
        json!({
            "mode": "host",
            "server": "https://127.0.0.1:7878",
            "role": "coordinator",
            "eventId": null,
            "host": {"port": 7878, "addresses": ["10.0.0.2:7878"], "coordinatorCode": "C",
                     "dealerCode": "D", "displayCode": "W",
                     "keyFingerprint": "3F2A 91C0 7BE4 D215 0C9E"},
            "signedOut": null,
            "serverKey": "3F2A 91C0 7BE4 D215 0C9E",
            "settings": to_json(&Settings::default()),
            "sound": {"available": false, "message": "no device"},
        })
    );
    for (m, s) in [(Mode::None, "none"), (Mode::Join, "join")] {
        assert_eq!(to_json(&m), json!(s));
    }
}

#[test]
fn trust_views_keep_the_shape_the_ui_reads() {
    let v = to_json(&PairingView {
        code: "123456".into(),
        role: Role::Display,
        expires_at_ms: 5,
        server_now_ms: 1,
    });
    assert_eq!(
        v,
        json!({"code": "123456", "role": "display", "expiresAtMs": 5, "serverNowMs": 1})
    );
    assert_eq!(
        to_json(&Submitted { op_id: "o".into() }),
        json!({"opId": "o"})
    );
    assert_eq!(
        to_json(&ExportedAudit {
            path: "/p".into(),
            rows: 2
        }),
        json!({"path": "/p", "rows": 2})
    );
}

/// `ui/ipc.js` is the UI's one place for event names; it must name the
/// same events as [`events`], or a window would listen to nothing.
#[test]
fn ui_ipc_js_names_the_same_events() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let js = std::fs::read_to_string(root.join("ui/ipc.js"))?;
    let block = js
        .split("export const EVENTS")
        .nth(1)
        .and_then(|rest| rest.split("});").next())
        .ok_or_else(|| anyhow::anyhow!("ui/ipc.js has no EVENTS"))?;
    let mut in_js: Vec<(String, String)> = block
        .lines()
        .filter_map(|l| {
            let (name, value) = l.trim().split_once(':')?;
            let value = value.trim().trim_end_matches(',').trim_matches('"');
            Some((name.trim().to_string(), value.to_string()))
        })
        .filter(|(_, v)| v.starts_with("pitboss://"))
        .collect();
    in_js.sort();
    let mut in_rust: Vec<(String, String)> = [
        ("CLOCK", events::CLOCK),
        ("STATE", events::STATE),
        ("STATUS", events::STATUS),
        ("NOTICE", events::NOTICE),
        ("APP", events::APP),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    in_rust.sort();
    assert_eq!(in_js, in_rust);
    // And nothing else in the UI talks to Tauri or names an event in a
    // string (a comment may mention one).
    let mut strays = vec![];
    let mut dirs = vec![root.join("ui")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                if !path.ends_with("tests") {
                    dirs.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "js" || e == "html")
                && !path.ends_with("ui/ipc.js")
            {
                let text = std::fs::read_to_string(&path)?;
                let names_event = ["\"pitboss://", "'pitboss://", "`pitboss://"]
                    .iter()
                    .any(|q| text.contains(q));
                if text.contains("__TAURI__") || names_event {
                    strays.push(path.display().to_string());
                }
            }
        }
    }
    assert!(
        strays.is_empty(),
        "Tauri used outside ui/ipc.js: {strays:?}"
    );
    Ok(())
}
