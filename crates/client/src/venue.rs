//! One venue server as the app sees it before it follows an event: who we
//! are there (the session), the list of events, creating one, and the
//! coordinator's tools for trust on an open network (pairing codes, the
//! device list, revocation, the audit trail).
//!
//! Nothing here touches the network until asked, so the app can start
//! following the last event from its cache with the host unreachable.
//!
//! A device that was revoked, or whose one-time pairing code is spent, is
//! signed out for good (remembered in the cache): it never logs in again on
//! its own with a stored code, only when a person joins again.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use pitboss_core::protocol::{
    AuditEntry, AuditList, CreateEvent, DeviceInfo, DeviceList, EventSummary, LockResult,
    PairingCode, PairingList, PairingRequest, RevokeResult,
};
use pitboss_core::Role;
use serde_json::Value;

use crate::cache::{Cache, StoredSession};
use crate::engine::{Client, Config};
use crate::transport::{self, Credentials};
use pitboss_tls::Fingerprint;

/// Why a call to the server failed, in the terms the UI shows.
#[derive(Debug, thiserror::Error)]
pub enum VenueError {
    /// No answer: the host is down, asleep or unreachable.
    #[error("cannot reach {server}: {reason}")]
    Unreachable { server: String, reason: String },
    /// Something answered at the host's address without the host's key:
    /// an impostor, or a reinstalled host. Nothing was sent to it; only a
    /// person can re-pair.
    #[error("{KEY_CHANGED} ({mismatch})")]
    KeyChanged {
        server: String,
        mismatch: pitboss_tls::KeyMismatch,
    },
    /// A pairing code's exchange did not check out: a wrong code, or
    /// something between this device and the host that is not the host.
    /// Nothing usable was sent; the code cannot be tried again.
    #[error("{0}")]
    PairingFailed(String),
    /// Wrong join code or a token the server no longer knows.
    #[error("{0}")]
    Unauthorized(String),
    /// This device may not use the server any more until a person joins
    /// again: a coordinator revoked it, or its one-time pairing code is spent.
    #[error("{0}")]
    SignedOut(String),
    /// The server answered with an error body.
    #[error("{message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
        current: Option<Value>,
        /// With `rate_limited`: when it is worth trying again.
        retry_after_ms: Option<u64>,
    },
    #[error(transparent)]
    Local(#[from] anyhow::Error),
}

/// What a revoked device shows; the same words everywhere (app, follow).
pub const REVOKED: &str = "This device was revoked by the coordinator; join again with a new code";

/// What a device shows when the server at the host's address does not hold
/// the key it joined.
pub const KEY_CHANGED: &str = "This is not the host you joined: its key changed";

/// What a device shows when it lost its session and joined with a one-time
/// pairing code, which cannot be used twice.
pub const PAIRING_SPENT: &str =
    "This device's one-time pairing code no longer works; join again with a new code";

/// What a device shows when a pairing exchange did not check out.
pub const PAIRING_UNVERIFIED: &str = "This pairing code did not check out: it is wrong, used or expired, or something between this device and the host is not the host. Nothing was sent; ask the coordinator for a new code";

/// What a device shows when the host no longer accepts its stored join code.
pub const CODE_REFUSED: &str =
    "The host no longer accepts this device's join code; join again with a new code";

/// A 6-digit pairing code, as a person may type it ("123456", "123 456",
/// "123-456"), rather than a long join code. Pairing codes are single use,
/// so a client must never try one again on its own.
pub fn is_pairing_code(code: &str) -> bool {
    pairing_digits(code).is_some()
}

fn pairing_digits(code: &str) -> Option<String> {
    let digits: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// The code as the server expects it: a pairing code's six digits alone, a
/// long code trimmed.
pub fn normalize_code(code: &str) -> String {
    pairing_digits(code).unwrap_or_else(|| code.trim().to_string())
}

/// Why a device whose stored code the server refuses is signed out: a
/// pairing code is single use; a long code was changed by the coordinator.
pub fn refused_code_reason(join_code: &str) -> &'static str {
    if is_pairing_code(join_code) {
        PAIRING_SPENT
    } else {
        CODE_REFUSED
    }
}

#[derive(Debug, Clone)]
pub struct VenueConfig {
    /// `https://host:port`.
    pub server: String,
    /// The server's key when a person (or the host itself) gave it; else
    /// the one pinned when this device joined, else the first key seen.
    pub pin: Option<Fingerprint>,
    pub join_code: String,
    pub name: String,
    pub device: String,
    pub cache_path: PathBuf,
}

/// Normalises what a person types ("192.168.1.20:7878", "pitboss.local",
/// "https://10.0.0.5:7878/") into a base URL. Pitboss servers speak HTTPS
/// only, so an `http://` typed from habit is read as `https://`.
pub fn server_url(address: &str) -> Result<String, String> {
    let a = address.trim().trim_end_matches('/');
    if a.is_empty() {
        return Err("enter the host's address, e.g. 192.168.1.20:7878".into());
    }
    let bare = a
        .strip_prefix("https://")
        .or_else(|| a.strip_prefix("http://"))
        .unwrap_or(a);
    let with_scheme = format!("https://{bare}");
    let rest = with_scheme.split("://").nth(1).unwrap_or_default();
    if rest.is_empty() || rest.contains(' ') || rest.contains('/') {
        return Err(format!(
            "\"{address}\" is not an address like 192.168.1.20:7878"
        ));
    }
    // Default port of a Pitboss host.
    let host_part = rest.rsplit_once(']').map_or(rest, |(_, p)| p);
    if host_part.contains(':') {
        Ok(with_scheme)
    } else {
        Ok(format!("{with_scheme}:7878"))
    }
}

pub struct Venue {
    cfg: VenueConfig,
    creds: Credentials,
    cache: Cache,
    http: reqwest::Client,
}

impl Venue {
    pub fn new(cfg: VenueConfig) -> anyhow::Result<Venue> {
        let cache = Cache::open(&cfg.cache_path)?;
        let creds = Credentials::new(
            &cfg.server,
            &cfg.join_code,
            &cfg.name,
            &cfg.device,
            cfg.pin,
            &cache,
        )?;
        let http = creds.http_client(Duration::from_secs(5))?;
        Ok(Venue {
            cfg,
            creds,
            cache,
            http,
        })
    }

    pub fn server(&self) -> &str {
        &self.cfg.server
    }

    /// The key this device trusts for the server: given, pinned when it
    /// joined, or learnt at the first contact (`None` before any).
    pub fn key(&self) -> Option<Fingerprint> {
        self.creds.pin.key()
    }

    /// Forgets the server's pinned key and the session made under it, for
    /// a person who re-pairs a host that was really reinstalled.
    pub fn forget_key(&self) -> anyhow::Result<()> {
        self.cache.forget_pin(&self.cfg.server)
    }

    /// The session remembered for this server, if any (no network).
    pub fn stored_session(&self) -> Option<StoredSession> {
        self.cache.session(&self.cfg.server).ok().flatten()
    }

    /// Logs in with the join code (long or pairing) and remembers the
    /// session: what a person does on the join screen, so it also ends a
    /// signed-out state. Never called on the app's own behalf with a
    /// pairing code (see `Venue::call`).
    pub async fn login(&self) -> Result<StoredSession, VenueError> {
        let stored = self.creds.log_in(&self.http, &self.cache).await?;
        self.cache.clear_signed_out(&self.cfg.server)?;
        Ok(stored)
    }

    /// Why this device is signed out of this server, if it is (no network).
    pub fn signed_out(&self) -> Option<String> {
        self.cache.signed_out(&self.cfg.server).ok().flatten()
    }

    /// Sends an authorised request, logging in again once if the server no
    /// longer knows the token. A revoked token signs the device out
    /// instead: a coordinator cut it off on purpose.
    async fn call(
        &self,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, VenueError> {
        for attempt in 0..2 {
            let token = self.creds.session(&self.http, &self.cache).await?.token;
            let r = build(&self.http, &self.cfg.server)
                .bearer_auth(token)
                .send()
                .await
                .map_err(|e| transport::unreachable(&self.cfg.server, &e))?;
            if r.status().is_success() {
                return Ok(r);
            }
            match transport::refused(r).await {
                e @ (VenueError::SignedOut(_) | VenueError::Unauthorized(_)) => {
                    match self.creds.unauthorized(&self.cache, e) {
                        VenueError::Unauthorized(_) if attempt == 0 => {}
                        e => return Err(e),
                    }
                }
                e => return Err(e),
            }
        }
        Err(VenueError::Unauthorized(
            "the server refused the session".into(),
        ))
    }

    /// A new pairing code for a device that is to join with `role`.
    pub async fn create_pairing(&self, role: Role) -> Result<PairingCode, VenueError> {
        let body = PairingRequest { role };
        let r = self
            .call(|h, s| h.post(format!("{s}/api/pairing")).json(&body))
            .await?;
        Ok(r.json().await.context("unreadable pairing code")?)
    }

    /// The pairing codes not yet used and not expired.
    pub async fn pairings(&self) -> Result<Vec<PairingCode>, VenueError> {
        let r = self.call(|h, s| h.get(format!("{s}/api/pairing"))).await?;
        let list: PairingList = r.json().await.context("unreadable pairing list")?;
        Ok(list.codes)
    }

    /// Withdraws a pairing code before anyone uses it.
    pub async fn cancel_pairing(&self, code: &str) -> Result<(), VenueError> {
        let code = normalize_code(code);
        self.call(|h, s| h.delete(format!("{s}/api/pairing/{code}")))
            .await?;
        Ok(())
    }

    /// Every device that joined, with its role, address and last sighting.
    pub async fn devices(&self) -> Result<Vec<DeviceInfo>, VenueError> {
        let r = self.call(|h, s| h.get(format!("{s}/api/devices"))).await?;
        let list: DeviceList = r.json().await.context("unreadable device list")?;
        Ok(list.devices)
    }

    /// Cuts a device off: its connections close, its token stops working.
    /// Revokes a device; the answer says which long join code was replaced
    /// because the device knew it.
    pub async fn revoke(&self, operator_id: &str) -> Result<RevokeResult, VenueError> {
        let id = path_segment(operator_id)?;
        let r = self
            .call(|h, s| h.post(format!("{s}/api/devices/{id}/revoke")))
            .await?;
        Ok(r.json().await.context("unreadable device")?)
    }

    /// "Lock the venue", when a code leaked: every long join code is
    /// replaced, every pairing code withdrawn, and every device but the
    /// host itself signed out. The new codes are on the host's screen.
    pub async fn lock_venue(&self) -> Result<LockResult, VenueError> {
        let r = self.call(|h, s| h.post(format!("{s}/api/lock"))).await?;
        Ok(r.json().await.context("unreadable answer")?)
    }

    /// An event's audit trail, newest first; one incident's when
    /// `incident_id` is given; at most `limit` entries when given.
    pub async fn audit(
        &self,
        event_id: &str,
        incident_id: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<AuditEntry>, VenueError> {
        let ev = path_segment(event_id)?;
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(i) = incident_id {
            query.push(("incident_id", i.to_string()));
        }
        if let Some(n) = limit {
            query.push(("limit", n.to_string()));
        }
        let r = self
            .call(|h, s| h.get(format!("{s}/api/events/{ev}/audit")).query(&query))
            .await?;
        let list: AuditList = r.json().await.context("unreadable audit trail")?;
        Ok(list.entries)
    }

    /// An event's audit trail as the server's CSV text.
    pub async fn audit_csv(&self, event_id: &str) -> Result<String, VenueError> {
        let ev = path_segment(event_id)?;
        let r = self
            .call(|h, s| h.get(format!("{s}/api/events/{ev}/audit.csv")))
            .await?;
        Ok(r.text().await.context("unreadable audit CSV")?)
    }

    pub async fn events(&self) -> Result<Vec<EventSummary>, VenueError> {
        let r = self.call(|h, s| h.get(format!("{s}/api/events"))).await?;
        let v: Value = r.json().await.context("unreadable event list")?;
        Ok(serde_json::from_value(v["events"].clone()).context("unreadable event list")?)
    }

    /// Creates an event; returns its id.
    pub async fn create_event(&self, ev: &CreateEvent) -> Result<String, VenueError> {
        let r = self
            .call(|h, s| h.post(format!("{s}/api/events")).json(ev))
            .await?;
        let v: Value = r.json().await.context("unreadable answer")?;
        v["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| VenueError::Local(anyhow::anyhow!("the answer has no event id")))
    }

    /// Starts following `event_id` (cache first, then the server).
    pub fn follow(&self, event_id: &str) -> anyhow::Result<Client> {
        let mut c = Config::new(
            &self.cfg.server,
            &self.cfg.join_code,
            event_id,
            self.cfg.cache_path.clone(),
        );
        c.name = self.cfg.name.clone();
        c.device = self.cfg.device.clone();
        c.pin = self.key();
        Client::start(c)
    }
}

/// An id as one path segment: ids are the server's own (`ev-1`, `op-…`);
/// anything that could leave the segment is refused rather than sent.
fn path_segment(id: &str) -> Result<&str, VenueError> {
    if id.is_empty()
        || id.bytes().all(|b| b == b'.')
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(VenueError::Local(anyhow::anyhow!("\"{id}\" is not an id")));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::{is_pairing_code, normalize_code, path_segment, server_url};

    #[test]
    fn six_digits_are_a_pairing_code_however_they_are_typed() {
        for c in ["123456", " 123 456 ", "123-456", "000000"] {
            assert!(is_pairing_code(c), "{c}");
            assert_eq!(normalize_code(c).len(), 6);
        }
        for c in [
            "12345",
            "1234567",
            "COORD-4242",
            "12345a",
            "",
            "１２３４５６",
        ] {
            assert!(!is_pairing_code(c), "{c}");
        }
        assert_eq!(normalize_code("  COORD-4242 "), "COORD-4242");
    }

    #[test]
    fn ids_stay_one_path_segment() {
        assert!(path_segment("ev-1").is_ok());
        assert!(path_segment("../devices").is_err());
        assert!(path_segment("a/b").is_err());
        assert!(path_segment("").is_err());
        assert!(path_segment("..").is_err());
    }

    #[test]
    fn addresses_people_type_become_urls() {
        assert_eq!(
            server_url("192.168.1.20:7878").as_deref(),
            Ok("https://192.168.1.20:7878")
        );
        assert_eq!(
            server_url(" 192.168.1.20 ").as_deref(),
            Ok("https://192.168.1.20:7878")
        );
        assert_eq!(
            server_url("http://host.local:9000/").as_deref(),
            Ok("https://host.local:9000")
        );
        assert_eq!(server_url("[::1]").as_deref(), Ok("https://[::1]:7878"));
        assert_eq!(
            server_url("https://10.0.0.5:7878").as_deref(),
            Ok("https://10.0.0.5:7878")
        );
        assert!(server_url("").is_err());
        assert!(server_url("a b").is_err());
        assert!(server_url("host/path").is_err());
    }
}
