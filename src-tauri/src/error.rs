//! The one error shape every command rejects with. The UI reads `code` to
//! choose its words and `current` to show a conflict, so the shape is pinned
//! by a test (docs/app-ipc.md).

use pitboss_client::VenueError;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize)]
pub struct CmdError {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<Value>,
    /// With `rate_limited`: how long the host asks to wait, so the UI can
    /// say "try again in 20 s" instead of a bare refusal.
    #[serde(rename = "retryAfterMs", skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl CmdError {
    pub fn new(code: &str, message: impl Into<String>) -> CmdError {
        CmdError {
            code: code.into(),
            message: message.into(),
            current: None,
            retry_after_ms: None,
        }
    }
}

impl From<VenueError> for CmdError {
    fn from(e: VenueError) -> CmdError {
        match e {
            VenueError::Unreachable { .. } => CmdError::new("offline", e.to_string()),
            VenueError::Unauthorized(m) => CmdError::new(
                "unauthorized",
                if m.is_empty() {
                    "the join code was not accepted".to_string()
                } else {
                    m
                },
            ),
            VenueError::SignedOut(m) => CmdError::new("signed_out", m),
            VenueError::PairingFailed(m) => CmdError::new("pairing_failed", m),
            e @ VenueError::KeyChanged { .. } => CmdError::new("key_changed", e.to_string()),
            VenueError::Refused {
                code,
                message,
                current,
                retry_after_ms,
                ..
            } => CmdError {
                code,
                message,
                current,
                retry_after_ms,
            },
            VenueError::Local(e) => CmdError::new("internal", format!("{e:#}")),
        }
    }
}

impl From<anyhow::Error> for CmdError {
    fn from(e: anyhow::Error) -> CmdError {
        let code = if e.downcast_ref::<pitboss_client::InvalidOp>().is_some() {
            "invalid"
        } else if e
            .downcast_ref::<pitboss_client::sync::QueueError>()
            .is_some()
        {
            "forbidden"
        } else {
            "internal"
        };
        CmdError::new(code, format!("{e:#}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The UI reads these shapes (ui/lib/forms.js normalizeError,
    /// ui/lib/status.js); a rename here would silently break it.
    #[test]
    fn trust_errors_keep_the_shape_the_ui_reads() {
        let e = CmdError::from(VenueError::SignedOut(pitboss_client::venue::REVOKED.into()));
        assert_eq!(
            serde_json::to_value(&e).ok(),
            Some(json!({"code": "signed_out", "message": pitboss_client::venue::REVOKED}))
        );
        let e = CmdError::from(VenueError::Refused {
            status: 429,
            code: "rate_limited".into(),
            message: "too many attempts".into(),
            current: None,
            retry_after_ms: Some(20_000),
        });
        assert_eq!(
            serde_json::to_value(&e).ok(),
            Some(
                json!({"code": "rate_limited", "message": "too many attempts", "retryAfterMs": 20_000})
            )
        );
    }

    /// An op that breaks its own rules is the caller's mistake (`invalid`),
    /// a display's op is not allowed (`forbidden`); only the rest is the
    /// device's own failure (`internal`).
    #[test]
    fn engine_refusals_keep_their_codes() {
        let code = |e: anyhow::Error| CmdError::from(e).code;
        assert_eq!(
            code(pitboss_client::InvalidOp("count must be 1 to 10,000".into()).into()),
            "invalid"
        );
        assert_eq!(
            code(pitboss_client::sync::QueueError::Display.into()),
            "forbidden"
        );
        assert_eq!(code(anyhow::anyhow!("disk full")), "internal");
    }
}
