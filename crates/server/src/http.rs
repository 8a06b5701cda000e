//! The HTTP half of the public API (see `docs/protocol.md`).
//!
//! Handlers parse and check what needs no stored state, then make one call
//! to the writer. Bodies are read as bytes and parsed here, so every bad
//! body (too large, not JSON, wrong fields) gets the same JSON error shape
//! instead of the framework's plain-text rejections.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pitboss_core::limits::MAX_NAME_CHARS;
use pitboss_core::ops::{validate_op_id, Actor, Op};
use pitboss_core::protocol::{CreateEvent, OpRequest, SessionRequest, SessionResponse};
use pitboss_core::structure::validate_levels;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::auth::{hash_token, random_hex};
use crate::error::ApiError;
use crate::writer::OpOutcome;
use crate::AppState;

/// Parses a JSON body, mapping every failure to the API's error body.
pub fn parse_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large()
        } else {
            ApiError::invalid(format!("cannot read the body: {}", e.body_text()))
        }
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(format!("malformed JSON body: {e}")))
}

/// A request that carried a valid session token.
pub struct Authed(pub Actor);

/// The bearer token of a request: `Authorization: Bearer …`, or `?token=…`
/// (browsers cannot set headers on a WebSocket).
pub fn token_of(parts: &Parts) -> Option<String> {
    if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let t = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))?;
        return Some(t.trim().to_string());
    }
    let q = parts.uri.query()?;
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| v.to_string())
}

impl FromRequestParts<Arc<AppState>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, ApiError> {
        let token = token_of(parts).ok_or_else(|| {
            ApiError::unauthorized("this call needs a session token: POST /api/session with a join code, then send Authorization: Bearer TOKEN")
        })?;
        st.auth.lookup(&token).map(Authed).ok_or_else(|| {
            ApiError::unauthorized("unknown or revoked session token; join again with a join code")
        })
    }
}

pub async fn health(State(st): State<Arc<AppState>>) -> Response {
    Json(json!({
        "ok": true,
        "server_time_ms": st.clock.now_ms(),
        "websockets": st.open_websockets.load(std::sync::atomic::Ordering::Relaxed),
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

fn clean_name(field: &str, v: &str, default: &str) -> Result<String, ApiError> {
    let v = v.trim();
    if v.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::invalid(format!(
            "{field} is longer than {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(if v.is_empty() {
        default.to_string()
    } else {
        v.to_string()
    })
}

pub async fn create_session(
    State(st): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SessionResponse>, ApiError> {
    let req: SessionRequest = parse_body(body)?;
    let name = clean_name("name", &req.name, "Unnamed")?;
    let device = clean_name("device", &req.device, "unknown device")?;
    let role = st
        .auth
        .role_for_code(&req.join_code)
        .ok_or_else(|| ApiError::unauthorized("wrong join code"))?;
    let token = random_hex(32);
    let actor = Actor {
        operator_id: format!("op-{}", random_hex(6)),
        name,
        device,
        role,
    };
    st.writer
        .add_session(hash_token(&token), actor.clone())
        .await?;
    tracing::info!(
        name = actor.name,
        device = actor.device,
        role = role.as_str(),
        "session opened"
    );
    Ok(Json(SessionResponse {
        token,
        role,
        operator_id: actor.operator_id,
    }))
}

pub async fn list_events(
    State(st): State<Arc<AppState>>,
    _who: Authed,
) -> Result<Response, ApiError> {
    let events = st.writer.list_events().await?;
    Ok(Json(json!({ "events": events })).into_response())
}

pub async fn create_event(
    State(st): State<Arc<AppState>>,
    Authed(actor): Authed,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    if !actor.role.may_create_events() {
        return Err(ApiError::forbidden("only a coordinator may create events"));
    }
    let req: CreateEvent = parse_body(body)?;
    let details = req.details();
    details.validate().map_err(ApiError::invalid)?;
    validate_levels(&req.structure.levels)
        .map_err(|m| ApiError::invalid(format!("structure: {m}")))?;
    let summary = st
        .writer
        .create_event(details, req.structure.levels)
        .await?;
    Ok((StatusCode::CREATED, Json(summary)).into_response())
}

pub async fn snapshot(
    State(st): State<Arc<AppState>>,
    Path(event_id): Path<String>,
    _who: Authed,
) -> Result<Response, ApiError> {
    let s = st.writer.snapshot(event_id).await?;
    Ok(Json(json!({
        "event_id": s.event_id,
        "seq": s.seq,
        "server_time_ms": s.server_time_ms,
        "state": s.state,
    }))
    .into_response())
}

pub async fn changes(
    State(st): State<Arc<AppState>>,
    Path(event_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    _who: Authed,
) -> Result<Response, ApiError> {
    let after = q.get("after").ok_or_else(|| {
        ApiError::invalid("query parameter after is required (the last seq you have, 0 for all)")
    })?;
    let after: u64 = after.parse().map_err(|_| {
        ApiError::invalid(format!(
            "after must be a non-negative integer, not {after:?}"
        ))
    })?;
    let frames = st.writer.changes(event_id, after).await?;
    // The stored frames are already JSON: splice them, do not re-encode.
    let mut body = String::with_capacity(16 + frames.iter().map(|f| f.len() + 1).sum::<usize>());
    body.push_str("{\"changes\":[");
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(f);
    }
    body.push_str("]}");
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Checks an op that arrived on either transport, before it takes the write
/// lock: op id, shape, role, stateless validation.
pub fn check_op(actor: &Actor, op_id: &str, op: serde_json::Value) -> Result<Op, ApiError> {
    validate_op_id(op_id)?;
    let op: Op = serde_json::from_value(op).map_err(|e| ApiError::invalid(format!("op: {e}")))?;
    if !actor.role.may(&op) {
        return Err(ApiError::forbidden(format!(
            "a {} may not send {}",
            actor.role.as_str(),
            op.type_name()
        )));
    }
    op.validate()?;
    Ok(op)
}

pub async fn post_op(
    State(st): State<Arc<AppState>>,
    Path(event_id): Path<String>,
    Authed(actor): Authed,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: OpRequest = parse_body(body)?;
    let op = check_op(&actor, &req.op_id, req.op)?;
    match st.writer.op(event_id, req.op_id, op, actor).await? {
        OpOutcome::Accepted(a) => Ok(Json(a).into_response()),
        OpOutcome::Rejected { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            Ok((status, Json(body)).into_response())
        }
    }
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see docs/protocol.md")
}
