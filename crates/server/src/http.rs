//! The HTTP half of the public API (see `docs/protocol/http.md`).
//!
//! Handlers parse and check what needs no stored state, then make one call
//! to the writer. Bodies are read as bytes and parsed here, so every bad
//! body (too large, not JSON, wrong fields) gets the same JSON error shape
//! instead of the framework's plain-text rejections.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pitboss_core::audit::csv_field;
use pitboss_core::limits::MAX_NAME_CHARS;
use pitboss_core::ops::{validate_op_id, Actor, Op, Role};
use pitboss_core::protocol::{
    AuditList, CreateEvent, DeviceInfo, DeviceList, LockResult, OpRequest, PairingAnswer,
    PairingConfirm, PairingExchange, PairingList, PairingRequest, RevokeResult, RotatedCode,
    SessionRequest, SessionResponse,
};
use pitboss_core::structure::validate_levels;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::auth::{hash_token, random_hex, JoinCodes, Lookup, Via};
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

/// The actor behind a request's token, or the 401 to answer.
pub fn authenticate(st: &AppState, parts: &Parts) -> Result<Actor, ApiError> {
    let token = token_of(parts).ok_or_else(|| {
        ApiError::unauthorized("this call needs a session token: POST /api/session with a join code, then send Authorization: Bearer TOKEN")
    })?;
    authenticate_token(st, &token)
}

/// The actor behind a session token, or the 401 to answer.
pub fn authenticate_token(st: &AppState, token: &str) -> Result<Actor, ApiError> {
    match st.auth.lookup(token) {
        Lookup::Valid(actor, since_ms) => {
            let last = st.last_seen(&actor.operator_id).max(since_ms);
            let idle = st.clock.now_ms() - last;
            if idle > st.session_idle_ms {
                return Err(ApiError::unauthorized(format!(
                    "this session was not used for {} and expired; join again with a join code",
                    crate::time::spoken_duration(st.session_idle_ms)
                )));
            }
            st.touch(&actor.operator_id);
            Ok(actor)
        }
        Lookup::Revoked => Err(ApiError::revoked()),
        Lookup::Unknown => Err(ApiError::unauthorized(
            "unknown session token; join again with a join code",
        )),
    }
}

impl FromRequestParts<Arc<AppState>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, ApiError> {
        authenticate(st, parts).map(Authed)
    }
}

/// A request from a coordinator (pairing, devices, audit).
pub struct Manager(pub Actor);

impl FromRequestParts<Arc<AppState>> for Manager {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, ApiError> {
        let actor = authenticate(st, parts)?;
        if !actor.role.may_manage() {
            return Err(ApiError::forbidden(format!(
                "only a coordinator may manage devices and read the audit trail, not a {}",
                actor.role.as_str()
            )));
        }
        Ok(Manager(actor))
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

/// What every way of joining checks first: the address's join attempts
/// (and its cool-down after wrong codes), then the body.
fn join_attempt<T: DeserializeOwned>(
    st: &AppState,
    peer: SocketAddr,
    now: std::time::Instant,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    st.limits
        .session_attempt(peer.ip(), now)
        .map_err(ApiError::rate_limited)?;
    parse_body(body)
}

/// The operator and device names a joining device gave, checked.
fn join_names(name: &str, device: &str) -> Result<(String, String), ApiError> {
    Ok((
        clean_name("name", name, "Unnamed")?,
        clean_name("device", device, "unknown device")?,
    ))
}

pub async fn create_session(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SessionResponse>, ApiError> {
    let now = std::time::Instant::now();
    let req: SessionRequest = join_attempt(&st, peer, now, body)?;
    let (name, device) = join_names(&req.name, &req.device)?;
    let Some((role, via)) = st.auth.redeem(&req.join_code, st.clock.now_ms()) else {
        wrong_code(&st, peer, now);
        return Err(ApiError::unauthorized("wrong join code"));
    };
    open_session(&st, peer, role, via, name, device).await
}

/// Counts a wrong code from `peer`: past a few the address cools down,
/// past many venue-wide every pairing code is withdrawn.
fn wrong_code(st: &AppState, peer: SocketAddr, now: std::time::Instant) {
    let w = st.limits.wrong_code(peer.ip(), now);
    if w.withdraw_pairing {
        st.auth.withdraw_pairing();
        tracing::warn!("many wrong join codes venue-wide: every pairing code withdrawn");
    }
    if w.cool_down.is_some() {
        tracing::warn!(address = %peer.ip(), "wrong join codes: address cooling down");
    }
}

/// `POST /api/pairing/exchange`: the first half of joining with a pairing
/// code that is never sent (see `pitboss_tls::pairing`). Answered for any
/// slot, with a random code when the slot has none, so the answer does not
/// say which codes are out; counted as a wrong code until proven, since
/// the answer alone tells a guesser whether the guess was right.
pub async fn pairing_exchange(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PairingAnswer>, ApiError> {
    let now = std::time::Instant::now();
    let req: PairingExchange = join_attempt(&st, peer, now, body)?;
    if req.slot > 9 {
        return Err(ApiError::invalid(
            "slot: the pairing code's first digit, 0 to 9",
        ));
    }
    let message = hex::decode(req.message.trim())
        .map_err(|_| ApiError::invalid("message: the device's SPAKE2 message, in hex"))?;
    let now_ms = st.clock.now_ms();
    let code = st.auth.pairing_in_slot(req.slot, now_ms);
    let password = code
        .clone()
        .unwrap_or_else(|| format!("{}{}", req.slot, &random_hex(8)[..5]));
    let (host, answer, proof) =
        pitboss_tls::pairing::HostExchange::answer(&password, &message, st.key)
            .map_err(|e| ApiError::invalid(format!("message: {e}")))?;
    wrong_code(&st, peer, now);
    let exchange = random_hex(16);
    let kept = st.auth.add_exchange(
        exchange.clone(),
        crate::auth::Exchange {
            code,
            host,
            struck_at: now,
            expires_at_ms: now_ms + crate::auth::EXCHANGE_TTL_MS,
        },
        now_ms,
    );
    if !kept {
        return Err(ApiError::rate_limited(crate::limits::Throttled {
            retry_after: std::time::Duration::from_secs(5),
            what: "pairing exchanges waiting for their proof",
        }));
    }
    Ok(Json(PairingAnswer {
        exchange,
        message: hex::encode(answer),
        proof: hex::encode(proof),
    }))
}

/// `POST /api/pairing/confirm`: the device's proof; a session when it
/// holds. When it does not (a wrong code, or a man in the middle whose
/// TLS key the device saw) the code is withdrawn: it may have been seen.
pub async fn pairing_confirm(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SessionResponse>, ApiError> {
    let now = std::time::Instant::now();
    let req: PairingConfirm = join_attempt(&st, peer, now, body)?;
    let (name, device) = join_names(&req.name, &req.device)?;
    let now_ms = st.clock.now_ms();
    let Some(x) = st.auth.take_exchange(&req.exchange, now_ms) else {
        return Err(ApiError::unauthorized(
            "unknown or expired pairing exchange; start again with the code",
        ));
    };
    let proof = hex::decode(req.proof.trim()).unwrap_or_default();
    let proven = x.code.is_some() && x.host.check(&proof, st.key);
    let role = match (proven, &x.code) {
        (true, Some(code)) => st.auth.redeem_pairing(code, now_ms),
        (false, Some(code)) => {
            st.auth.cancel_pairing(code);
            tracing::warn!(address = %peer.ip(), "a pairing proof did not hold: its code is withdrawn");
            None
        }
        _ => None,
    };
    let Some(role) = role else {
        return Err(ApiError::unauthorized(
            "the pairing did not check out; ask the coordinator for a new code",
        ));
    };
    st.limits.forgive_wrong_code(peer.ip(), x.struck_at);
    open_session(&st, peer, role, Via::Pairing, name, device).await
}

/// Makes and stores a session for a device that joined.
async fn open_session(
    st: &AppState,
    peer: SocketAddr,
    role: Role,
    via: Via,
    name: String,
    device: String,
) -> Result<Json<SessionResponse>, ApiError> {
    let token = random_hex(32);
    let actor = Actor {
        operator_id: format!("op-{}", random_hex(6)),
        name,
        device,
        role,
    };
    st.writer
        .add_session(
            hash_token(&token),
            actor.clone(),
            peer.ip().to_string(),
            via,
        )
        .await?;
    tracing::info!(
        name = actor.name,
        device = actor.device,
        role = role.as_str(),
        address = %peer.ip(),
        via = via.as_str(),
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Authed(actor): Authed,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    st.limits
        .address_op(peer.ip())
        .map_err(ApiError::rate_limited)?;
    let req: OpRequest = parse_body(body)?;
    let op = check_op(&actor, &req.op_id, req.op)?;
    match st
        .writer
        .op(event_id, req.op_id, op, actor, peer.ip().to_string())
        .await?
    {
        OpOutcome::Accepted(a) => Ok(Json(a).into_response()),
        OpOutcome::Rejected { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            Ok((status, Json(body)).into_response())
        }
    }
}

pub async fn create_pairing(
    State(st): State<Arc<AppState>>,
    Manager(who): Manager,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: PairingRequest = parse_body(body)?;
    let code = st
        .auth
        .create_pairing(req.role, st.clock.now_ms())
        .map_err(ApiError::invalid)?;
    tracing::info!(by = who.name, role = req.role.as_str(), "pairing code made");
    Ok((StatusCode::CREATED, Json(code)).into_response())
}

pub async fn list_pairing(State(st): State<Arc<AppState>>, _who: Manager) -> Json<PairingList> {
    Json(PairingList {
        codes: st.auth.list_pairing(st.clock.now_ms()),
    })
}

pub async fn cancel_pairing(
    State(st): State<Arc<AppState>>,
    Path(code): Path<String>,
    _who: Manager,
) -> Result<StatusCode, ApiError> {
    if st.auth.cancel_pairing(&code) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no outstanding pairing code {code}"
        )))
    }
}

/// The stored devices with what only memory knows: open sockets and the
/// latest time each was heard from.
async fn devices(st: &AppState) -> Result<Vec<DeviceInfo>, ApiError> {
    let mut list = st.writer.devices().await?;
    for d in &mut list {
        d.connections = st.live_connections(&d.operator_id);
        d.last_seen_ms = d.last_seen_ms.max(st.last_seen(&d.operator_id));
    }
    Ok(list)
}

pub async fn list_devices(
    State(st): State<Arc<AppState>>,
    _who: Manager,
) -> Result<Json<DeviceList>, ApiError> {
    Ok(Json(DeviceList {
        devices: devices(&st).await?,
    }))
}

pub async fn revoke_device(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(operator_id): Path<String>,
    Manager(who): Manager,
) -> Result<Json<RevokeResult>, ApiError> {
    if operator_id == who.operator_id {
        return Err(ApiError::invalid(
            "you cannot revoke the device you are using; revoke it from another coordinator's screen",
        ));
    }
    let mut device = devices(&st)
        .await?
        .into_iter()
        .find(|d| d.operator_id == operator_id)
        .ok_or_else(|| ApiError::not_found(format!("no device {operator_id}")))?;
    // A leaked coordinator code must not be able to cut the host off.
    if is_host_address(&device.address) && !is_host(peer) {
        return Err(ApiError::forbidden(
            "the host's own session can be revoked only on the host",
        ));
    }
    // A device that joined with a long code knows it and could join again
    // with it: that code is replaced, in memory first so no login slips in
    // between, and stored with the revoke. Pairing codes are single use.
    let rotated = (device.via == Via::JoinCode.as_str() && !device.revoked).then(|| {
        let code = st.auth.rotate_code(device.role);
        RotatedCode {
            role: device.role,
            code,
        }
    });
    let settings = rotated
        .iter()
        .map(|r| (format!("{}_code", r.role.as_str()), r.code.clone()))
        .collect();
    let at = st
        .writer
        .revoke(vec![operator_id.clone()], settings)
        .await?;
    let closed = st.close_device(&operator_id);
    tracing::warn!(
        by = who.name,
        device = operator_id,
        closed,
        rotated = rotated.as_ref().map(|r| r.role.as_str()),
        "device revoked"
    );
    // The device as listed now, without reading the list again: an earlier
    // revoke keeps its own time, and its sockets were just closed.
    if !device.revoked {
        device.revoked = true;
        device.revoked_at_ms = Some(at);
    }
    device.connections = 0;
    Ok(Json(RevokeResult {
        device,
        rotated_code: rotated,
    }))
}

/// `GET /api/join-codes`: the long codes as they are now, for a
/// coordinator on the host itself. A coordinator elsewhere is refused: a
/// leaked coordinator code must not hand out every other code.
pub async fn join_codes(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    _who: Manager,
) -> Result<Json<JoinCodes>, ApiError> {
    if !is_host(peer) {
        return Err(ApiError::forbidden(
            "the join codes are shown on the host's screen; read them there",
        ));
    }
    Ok(Json(st.auth.codes()))
}

/// The host itself: a request from this machine's loopback address
/// (127.0.0.1 or ::1). The app that hosts reaches its server there;
/// nothing on the venue's network can come from it.
pub fn is_host(peer: SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V4(v4) => v4 == std::net::Ipv4Addr::LOCALHOST,
        std::net::IpAddr::V6(v6) => {
            v6 == std::net::Ipv6Addr::LOCALHOST
                || v6.to_ipv4_mapped() == Some(std::net::Ipv4Addr::LOCALHOST)
        }
    }
}

/// A device that joined from the host itself (its address as stored).
fn is_host_address(address: &str) -> bool {
    address
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| is_host(SocketAddr::new(ip, 0)))
}

/// `POST /api/lock`: "Lock the venue", when a code leaked. All three long
/// codes are replaced, every pairing code is withdrawn and every session
/// is revoked but the host's own (those opened on the host itself). The
/// new codes are not in the answer: they are read on the host's screen.
pub async fn lock_venue(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Manager(who): Manager,
) -> Result<Json<LockResult>, ApiError> {
    // In memory first, so no login with an old code slips in meanwhile.
    let codes = st.auth.rotate_all();
    st.auth.withdraw_pairing();
    let list = devices(&st).await?;
    let (kept, cut): (Vec<DeviceInfo>, Vec<DeviceInfo>) = list
        .into_iter()
        .filter(|d| !d.revoked)
        .partition(|d| is_host_address(&d.address));
    let ids: Vec<String> = cut.iter().map(|d| d.operator_id.clone()).collect();
    let settings = vec![
        ("coordinator_code".to_string(), codes.coordinator),
        ("dealer_code".to_string(), codes.dealer),
        ("display_code".to_string(), codes.display),
    ];
    st.writer.revoke(ids.clone(), settings).await?;
    let closed: usize = ids.iter().map(|id| st.close_device(id)).sum();
    tracing::warn!(
        by = who.name,
        from = %peer.ip(),
        revoked = ids.len(),
        closed,
        "venue locked: every join code replaced, every pairing code withdrawn"
    );
    Ok(Json(LockResult {
        revoked: ids.len() as u32,
        kept: kept.len() as u32,
    }))
}

/// Default and largest page of the audit trail.
const AUDIT_PAGE: u32 = 500;
const AUDIT_MAX: u32 = 100_000;

fn audit_query(q: &HashMap<String, String>) -> Result<(Option<String>, u32), ApiError> {
    let incident = q.get("incident_id").filter(|s| !s.is_empty()).cloned();
    let limit = match q.get("limit") {
        None => AUDIT_PAGE,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=AUDIT_MAX).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "limit must be between 1 and {AUDIT_MAX}, not {l:?}"
                ))
            })?,
    };
    Ok((incident, limit))
}

pub async fn audit(
    State(st): State<Arc<AppState>>,
    Path(event_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    _who: Manager,
) -> Result<Json<AuditList>, ApiError> {
    let (incident, limit) = audit_query(&q)?;
    let entries = st.writer.audit(event_id, incident, limit).await?;
    Ok(Json(AuditList { entries }))
}

/// `2026-12-02T21:14:03.250Z` for a server instant: a spreadsheet sorts it,
/// a person reads it, and it does not depend on the server's time zone.
pub fn iso_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

pub async fn audit_csv(
    State(st): State<Arc<AppState>>,
    Path(event_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    _who: Manager,
) -> Result<Response, ApiError> {
    let (incident, _) = audit_query(&q)?;
    let mut entries = st
        .writer
        .audit(event_id.clone(), incident, AUDIT_MAX)
        .await?;
    entries.reverse(); // oldest first, as a log reads
    let mut out = String::from(
        "seq,time_utc,at_ms,name,device,role,address,operator_id,op_id,op,summary,incident_id,before,after\r\n",
    );
    for e in &entries {
        let cells = [
            e.seq.to_string(),
            iso_utc(e.at_ms),
            e.at_ms.to_string(),
            e.name.clone(),
            e.device.clone(),
            e.role.as_str().to_string(),
            e.address.clone(),
            e.operator_id.clone(),
            e.op_id.clone(),
            serde_json::to_string(&e.op).unwrap_or_default(),
            e.summary.clone(),
            e.incident_id.clone().unwrap_or_default(),
            e.before.to_string(),
            e.after.to_string(),
        ];
        let row: Vec<String> = cells.iter().map(|c| csv_field(c)).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    let disposition = format!("attachment; filename=\"pitboss-audit-{event_id}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        out,
    )
        .into_response())
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see docs/protocol/http.md")
}

#[cfg(test)]
mod tests {
    use super::iso_utc;

    #[test]
    fn server_instants_print_as_utc() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso_utc(1_796_249_643_250), "2026-12-02T22:14:03.250Z");
        assert_eq!(iso_utc(-1), "1969-12-31T23:59:59.999Z");
    }
}
