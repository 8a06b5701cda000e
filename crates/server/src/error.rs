//! The one error type of the API: an HTTP status and the public error body.
//! WebSocket frames carry the same `error` codes and messages.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pitboss_core::protocol::ErrorBody;
use pitboss_core::OpError;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: error.to_string(),
                message: message.into(),
                current: None,
                retry_after_ms: None,
                revoked: false,
            },
        }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn too_large() -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the request is larger than {} bytes",
                pitboss_core::limits::MAX_MESSAGE_BYTES
            ),
        )
    }

    pub fn gone(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::GONE, "gone", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// A 401 for a token a coordinator revoked: the client must stop, not
    /// log in again with a stored code.
    pub fn revoked() -> ApiError {
        let mut e = ApiError::unauthorized(
            "this device was revoked by a coordinator; ask the floor for a new pairing code",
        );
        e.body.revoked = true;
        e
    }

    /// A 429 saying what was limited and when to try again.
    pub fn rate_limited(t: crate::limits::Throttled) -> ApiError {
        let ms = t.retry_after_ms();
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many {}; try again in {:.1} s",
                t.what,
                ms as f64 / 1000.0
            ),
        );
        e.body.retry_after_ms = Some(ms);
        e
    }

    pub fn with_current(mut self, current: Option<Value>) -> ApiError {
        self.body.current = current;
        self
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> ApiError {
        let status = match e {
            OpError::Invalid { .. } => StatusCode::BAD_REQUEST,
            OpError::Conflict { .. } => StatusCode::CONFLICT,
            OpError::NotFound(_) => StatusCode::NOT_FOUND,
            OpError::Forbidden(_) => StatusCode::FORBIDDEN,
        };
        ApiError::new(status, e.code(), e.to_string()).with_current(e.current().cloned())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.body.retry_after_ms;
        let mut r = (self.status, axum::Json(self.body)).into_response();
        if let Some(ms) = retry {
            // Whole seconds, rounded up, as HTTP's Retry-After wants.
            let secs = ms.div_ceil(1000).max(1);
            if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        r
    }
}
