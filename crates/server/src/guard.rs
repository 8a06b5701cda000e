//! What every request must be before any route sees it, so that a web page
//! open on a laptop in the room cannot use the venue's server:
//!
//! - an `Origin`, when a browser sends one, is the app's own (Tauri's) or
//!   this server's; any other site gets `403` (a page could otherwise post
//!   wrong join codes from the director's laptop and lock it out);
//! - a `POST` with a body says `application/json`: a page may send
//!   `text/plain` across sites without asking first, never JSON (`415`);
//! - `Host` is an IP address, `localhost` or a name this host answers to,
//!   so a name a stranger controls cannot be pointed at it (DNS rebinding,
//!   `421`).
//!
//! A refused request reaches no handler, so it never counts as a wrong
//! code or an op.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN, TRANSFER_ENCODING};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::AppState;

/// The origins of the app's own webview (Tauri 2 on Linux and macOS, and on
/// Windows).
const APP_ORIGINS: &[&str] = &[
    "tauri://localhost",
    "http://tauri.localhost",
    "https://tauri.localhost",
];

/// The names this host answers to besides IP addresses and `localhost`:
/// its own name (and that name on the LAN's mDNS, `.local`), and any a
/// venue set up for it (`--host-name`).
pub fn own_names(extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = extra.iter().map(|n| n.to_ascii_lowercase()).collect();
    if let Some(h) = hostname() {
        names.push(format!("{h}.local"));
        names.push(h);
    }
    names
}

fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())?;
    let h = h.trim().to_ascii_lowercase();
    (!h.is_empty()).then_some(h)
}

/// The host part of a `Host` header (or of an origin's authority), without
/// the port; IPv6 literals keep no brackets.
fn host_part(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority.rsplit_once(':').map_or(authority, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            authority
        }
    })
}

fn host_allowed(host: &str, names: &[String]) -> bool {
    let h = host_part(host).trim_end_matches('.').to_ascii_lowercase();
    h.parse::<IpAddr>().is_ok() || h == "localhost" || names.contains(&h)
}

fn origin_allowed(origin: &str, host: Option<&str>) -> bool {
    if APP_ORIGINS.contains(&origin) {
        return true;
    }
    // A page this server served itself: same scheme-less authority.
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

fn has_body(req: &Request<Body>) -> bool {
    let headers = req.headers();
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

fn is_json(req: &Request<Body>) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

pub async fn check(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let host = req.headers().get(HOST).and_then(|v| v.to_str().ok());
    if let Some(h) = host {
        if !host_allowed(h, &st.host_names) {
            return ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "misdirected",
                format!("this server does not answer to the name {h}; use its address"),
            )
            .into_response();
        }
    }
    if let Some(origin) = req.headers().get(ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !origin_allowed(origin, host) {
            return ApiError::forbidden(format!(
                "requests from the web page at {origin} are refused: only the Pitboss app and this server's own pages may call it"
            ))
            .into_response();
        }
    }
    if req.method() == Method::POST && has_body(&req) && !is_json(&req) {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON, sent with Content-Type: application/json",
        )
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::{host_allowed, host_part, origin_allowed};

    #[test]
    fn addresses_localhost_and_own_names_are_hosts_others_are_not() {
        let names = vec!["pitboss-desk".to_string(), "pitboss-desk.local".to_string()];
        for h in [
            "192.168.1.20:7878",
            "127.0.0.1",
            "[::1]:7878",
            "localhost:7878",
            "LOCALHOST",
            "pitboss-desk.local:7878",
            "pitboss-desk.",
        ] {
            assert!(host_allowed(h, &names), "{h}");
        }
        for h in [
            "evil.example:7878",
            "evil.example",
            "192.168.1.20.evil.example",
        ] {
            assert!(!host_allowed(h, &names), "{h}");
        }
        assert_eq!(host_part("[fe80::1]:7878"), "fe80::1");
    }

    #[test]
    fn only_the_app_and_the_server_itself_are_origins() {
        assert!(origin_allowed("tauri://localhost", Some("10.0.0.5:7878")));
        assert!(origin_allowed(
            "http://10.0.0.5:7878",
            Some("10.0.0.5:7878")
        ));
        assert!(!origin_allowed(
            "http://evil.example",
            Some("10.0.0.5:7878")
        ));
        assert!(!origin_allowed("null", Some("10.0.0.5:7878")));
        assert!(!origin_allowed("http://10.0.0.5:7878", None));
    }
}
