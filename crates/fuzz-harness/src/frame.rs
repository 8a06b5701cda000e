//! The `frame` target: what the server makes of one WebSocket text frame a
//! client sent, up to the point where an op is queued for the writer.
//!
//! The server's read path is, in order: the WebSocket library refuses a
//! message over [`MAX_MESSAGE_BYTES`] (`ws.rs` configures it) and a text
//! frame that is not UTF-8; `handle_text` parses a [`ClientMsg`] with
//! `serde_json::from_str`; an `op` message then goes through
//! `pitboss_server::http::check_op` (op id, op, role, stateless
//! validation). [`decode`] and [`check_op`] restate that path on top of the
//! very functions of `pitboss-core` it calls, so that a fuzz build needs no
//! socket and no database; `tests/server_agrees.rs` holds [`check_op`] to
//! the server's own on the whole corpus, so the two cannot drift apart
//! unnoticed.
//!
//! What a venue relies on: whatever a device on the Wi-Fi sends, the server
//! answers with a clear error or acts on a well-defined message, never
//! panics; what it acts on reads back the same after a round trip (the op
//! is stored and broadcast re-encoded); an oversized frame is refused.

use pitboss_core::limits::{MAX_MESSAGE_BYTES, MAX_OP_ID_BYTES};
use pitboss_core::ops::{validate_op_id, Op, OpError, Role};
use pitboss_core::protocol::ClientMsg;
use serde_json::Value;

/// Why a frame or an op was refused: the public error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

impl From<OpError> for Refusal {
    fn from(e: OpError) -> Refusal {
        Refusal::new(e.code(), e.to_string())
    }
}

/// One text frame, as the server reads it.
pub fn decode(frame: &[u8]) -> Result<ClientMsg, Refusal> {
    if frame.len() > MAX_MESSAGE_BYTES {
        return Err(Refusal::new(
            "too_large",
            format!("message larger than {MAX_MESSAGE_BYTES} bytes"),
        ));
    }
    let text = std::str::from_utf8(frame)
        .map_err(|e| Refusal::new("invalid", format!("a text frame must be UTF-8: {e}")))?;
    parse(text)
}

/// The JSON step of [`decode`], without the size limit.
pub fn parse(text: &str) -> Result<ClientMsg, Refusal> {
    serde_json::from_str(text)
        .map_err(|e| Refusal::new("invalid", format!("cannot read this frame: {e}")))
}

/// What the server checks of an `op` message before queueing it: the op
/// id, the op's shape, the sender's role, the limits that need no state.
pub fn check_op(role: Role, op_id: &str, op: &Value) -> Result<Op, Refusal> {
    validate_op_id(op_id)?;
    let op: Op = serde_json::from_value(op.clone())
        .map_err(|e| Refusal::new("invalid", format!("op: {e}")))?;
    check_parsed_op(role, &op)?;
    Ok(op)
}

/// The part of [`check_op`] after parsing: role, then stateless validation.
pub fn check_parsed_op(role: Role, op: &Op) -> Result<(), Refusal> {
    if !role.may(op) {
        return Err(Refusal::new(
            "forbidden",
            format!("a {} may not send {}", role.as_str(), op.type_name()),
        ));
    }
    op.validate()?;
    Ok(())
}

/// Ops only a coordinator may send: running the clock and editing the
/// structure. Written out here, not taken from `Role::may`, so that a
/// change to the role table that lets a dealer pause the clock is caught.
pub fn coordinator_only(op: &Op) -> bool {
    matches!(
        op,
        Op::ClockStart
            | Op::ClockPause
            | Op::ClockAdjust { .. }
            | Op::ClockSetLevel { .. }
            | Op::StructureUpdate { .. }
    )
}

/// The fuzz target: arbitrary bytes as one text frame.
pub fn check(data: &[u8]) {
    let msg = match decode(data) {
        Ok(msg) => msg,
        Err(r) => {
            assert!(
                r.code == "invalid" || r.code == "too_large",
                "unexpected code {r:?}"
            );
            assert!(!r.message.is_empty(), "a refusal says why");
            if data.len() > MAX_MESSAGE_BYTES {
                assert_eq!(r.code, "too_large", "oversize frames are refused as such");
            }
            return;
        }
    };
    assert!(
        data.len() <= MAX_MESSAGE_BYTES,
        "an oversized frame was read"
    );

    // Re-encoding what was read and reading it again gives the same
    // message. Without the size limit: numbers may re-encode longer
    // ("1e9" becomes "1000000000.0"), which says nothing about the server.
    let text = serde_json::to_string(&msg).expect("a decoded message re-encodes");
    let again = parse(&text).unwrap_or_else(|e| panic!("{text} does not read back: {e:?}"));
    assert!(same_msg(&msg, &again), "{msg:?} read back as {again:?}");

    if let ClientMsg::Op { op_id, op, .. } = &msg {
        check_op_message(op_id, op);
    }
}

fn check_op_message(op_id: &str, raw: &Value) {
    let as_coordinator = check_op(Role::Coordinator, op_id, raw);
    let as_dealer = check_op(Role::Dealer, op_id, raw);
    // A wall display sends nothing: every op that reads as an op is
    // refused as forbidden, whatever it is.
    match check_op(Role::Display, op_id, raw) {
        Ok(op) => panic!("a display may send {op:?}"),
        Err(e) => assert!(
            matches!(e.code, "invalid" | "forbidden"),
            "a display got {e:?}"
        ),
    }
    for r in [&as_coordinator, &as_dealer] {
        if let Err(e) = r {
            assert!(
                matches!(e.code, "invalid" | "forbidden"),
                "a stateless check answered {e:?}"
            );
            assert!(!e.message.is_empty());
        }
    }
    match (&as_coordinator, &as_dealer) {
        (Ok(c), Ok(d)) => {
            assert_eq!(c, d, "the op read differently per role");
            assert!(!coordinator_only(d), "a dealer may send {d:?}");
        }
        (Ok(c), Err(e)) => {
            assert_eq!(
                e.code, "forbidden",
                "{c:?} is fine for a coordinator: {e:?}"
            );
            assert!(coordinator_only(c), "a dealer was refused {c:?}");
        }
        (Err(e), Ok(d)) => panic!("a dealer may send {d:?} but a coordinator may not: {e:?}"),
        (Err(c), Err(d)) => {
            // Both refused for the op itself, or the dealer for the role,
            // which is checked before the op's values.
            if c != d {
                assert_eq!(d.code, "forbidden", "{c:?} vs {d:?}");
                let op: Op = serde_json::from_value(raw.clone()).expect("the role was checked");
                assert!(coordinator_only(&op), "a dealer was refused {op:?}");
            }
        }
    }
    let Ok(op) = as_coordinator else { return };
    assert!(
        !op_id.is_empty()
            && op_id.len() <= MAX_OP_ID_BYTES
            && op_id.bytes().all(|b| b.is_ascii_graphic()),
        "accepted op id {op_id:?}"
    );
    // The op is stored and broadcast as its JSON, and a retry is told from
    // a reuse of its op id by comparing that text: it must read back the
    // same and be stable.
    let text = serde_json::to_string(&op).expect("an op encodes");
    let back: Op = serde_json::from_str(&text).expect("an encoded op reads back");
    assert_eq!(back, op, "{text}");
    assert_eq!(
        serde_json::to_string(&back).expect("encodes"),
        text,
        "the canonical text of an op is not stable"
    );
    let back: Op = serde_json::from_value(serde_json::to_value(&op).expect("to value"))
        .expect("reads back from a value");
    assert_eq!(back, op);
}

/// Equality of two client messages, where the raw `op` of an op message
/// compares as JSON with [`same_json`].
pub fn same_msg(a: &ClientMsg, b: &ClientMsg) -> bool {
    match (a, b) {
        (
            ClientMsg::Op {
                op_id: ia,
                event_id: ea,
                op: oa,
            },
            ClientMsg::Op {
                op_id: ib,
                event_id: eb,
                op: ob,
            },
        ) => ia == ib && ea == eb && same_json(oa, ob),
        _ => a == b,
    }
}

/// JSON equality that lets a float differ in its last bits. serde_json
/// (without its `float_roundtrip` feature, which the workspace does not
/// turn on) parses some 17-digit floats one ulp away from the value they
/// were printed from. No op has a float field, so an op with a float is
/// refused whatever its last bit; the difference cannot reach a record.
pub fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (x.is_f64(), y.is_f64()) {
                (true, true) => match (x.as_f64(), y.as_f64()) {
                    (Some(p), Some(q)) => close(p, q),
                    _ => false,
                },
                // An integer stays an integer, exactly.
                _ => x == y,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

fn close(p: f64, q: f64) -> bool {
    if p == q {
        return true;
    }
    // Neighbouring floats of one sign differ by one in their bit pattern.
    p.is_sign_negative() == q.is_sign_negative() && p.to_bits().abs_diff(q.to_bits()) <= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_of(text: &str) -> Vec<u8> {
        text.as_bytes().to_vec()
    }

    #[test]
    fn a_frame_of_exactly_the_limit_is_read_and_one_byte_more_is_refused() {
        let msg = r#"{"type":"ping","client_time_ms":5}"#;
        let mut padded = frame_of(msg);
        padded.resize(MAX_MESSAGE_BYTES, b' ');
        assert_eq!(decode(&padded), Ok(ClientMsg::Ping { client_time_ms: 5 }));
        padded.push(b' ');
        assert_eq!(decode(&padded).map_err(|r| r.code), Err("too_large"));
        check(&padded);
    }

    #[test]
    fn bad_frames_get_a_clear_refusal() {
        for bad in [&b"\xff\xfe"[..], b"", b"{", b"[]", br#"{"type":"explode"}"#] {
            let r = decode(bad).unwrap_err();
            assert_eq!(r.code, "invalid");
            check(bad);
        }
    }

    #[test]
    fn a_dealer_is_refused_the_clock_with_forbidden() {
        let op = serde_json::json!({"type": "clock.pause"});
        assert_eq!(
            check_op(Role::Dealer, "a-1", &op).map_err(|r| r.code),
            Err("forbidden")
        );
        assert_eq!(check_op(Role::Coordinator, "a-1", &op), Ok(Op::ClockPause));
        check(br#"{"type":"op","op_id":"a-1","event_id":"e","op":{"type":"clock.pause"}}"#);
    }

    #[test]
    fn floats_may_differ_in_their_last_bit_only() {
        assert!(close(0.1, f64::from_bits(0.1f64.to_bits() + 1)));
        assert!(!close(0.1, 0.2));
        assert!(!close(1.0, -1.0));
        assert!(same_json(
            &serde_json::json!({"a": [1, 2.5]}),
            &serde_json::json!({"a": [1, 2.5]})
        ));
        assert!(!same_json(&serde_json::json!(1), &serde_json::json!(1.0)));
    }
}
