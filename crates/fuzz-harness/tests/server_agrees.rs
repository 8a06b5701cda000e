//! The `frame` target fuzzes a restatement of the server's op check
//! (`frame::check_op`), so that a fuzz build needs no server. This test
//! holds the restatement to the server's own `http::check_op` on every op
//! message of the committed frame inputs and on a few written here: same
//! op accepted, or same error code and message. If the server's check
//! changes, this fails until the harness follows.

use std::path::Path;

use anyhow::Result;
use pitboss_core::protocol::ClientMsg;
use pitboss_core::{Actor, Role};
use pitboss_fuzz_harness::frame;
use serde_json::{json, Value};

fn actor(role: Role) -> Actor {
    Actor {
        operator_id: "op-1".into(),
        name: "Ana".into(),
        device: "laptop-7".into(),
        role,
    }
}

fn agree(op_id: &str, op: &Value) {
    for role in [Role::Coordinator, Role::Dealer] {
        let ours = frame::check_op(role, op_id, op).map_err(|r| (r.code.to_string(), r.message));
        let server = pitboss_server::http::check_op(&actor(role), op_id, op.clone())
            .map_err(|e| (e.body.error, e.body.message));
        assert_eq!(ours, server, "{role:?} sending {op_id:?} {op}");
    }
}

#[test]
fn the_harness_checks_ops_as_the_server_does() -> Result<()> {
    let mut ops = 0;
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    for kind in ["corpus", "seeds"] {
        for entry in std::fs::read_dir(fuzz.join(kind).join("frame"))? {
            let data = std::fs::read(entry?.path())?;
            if let Ok(ClientMsg::Op { op_id, op, .. }) = frame::decode(&data) {
                agree(&op_id, &op);
                ops += 1;
            }
        }
    }
    assert!(ops > 0, "no op message among the frame inputs");
    for (op_id, op) in [
        ("a-1", json!({"type": "clock.adjust", "delta_ms": 0})),
        (
            "a-1",
            json!({"type": "clock.adjust", "delta_ms": 86_400_001}),
        ),
        (
            "a-1",
            json!({"type": "structure.update", "base_version": 1, "levels": []}),
        ),
        ("a-1", json!({"type": "stats.bust", "count": 0})),
        (
            "a-1",
            json!({"type": "incident.update", "incident_id": "inc-1", "base_version": 1}),
        ),
        ("", json!({"type": "clock.start"})),
        ("tab\there", json!({"type": "clock.start"})),
        (&"x".repeat(101), json!({"type": "clock.start"})),
        ("a-1", json!({"type": "clock.start", "extra": true})),
        ("a-1", json!("clock.start")),
    ] {
        agree(op_id, &op);
    }
    Ok(())
}
