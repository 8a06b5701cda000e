//! How a client reaches the server: one login, one reading of a refusal,
//! and two links that both speak [`ServerMsg`] — the WebSocket
//! ([`ws::WsLink`]) and the plain-HTTP fallback a proxy that blocks
//! upgrades leaves ([`http::HttpLink`]). The connection actor and the
//! venue tools share all of it, so a 401 means the same on every path.
//!
//! [`ServerMsg`]: pitboss_core::protocol::ServerMsg

pub mod http;
pub mod ws;

use std::time::Duration;

use anyhow::Context as _;
use pitboss_core::protocol::{
    PairingAnswer, PairingConfirm, PairingExchange, SessionRequest, SessionResponse,
};
use pitboss_tls::Pin;

use crate::cache::{Cache, StoredSession};
use crate::time::wall_ms;
use crate::venue::{normalize_code, VenueError, PAIRING_UNVERIFIED, REVOKED};

/// Who this device says it is when it logs in, and which server key it
/// trusts.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// `https://host:port` of the server.
    pub server: String,
    pub join_code: String,
    pub name: String,
    pub device: String,
    /// The server's key: pinned when this device joined (or given by a
    /// person or the host), else learnt at the first contact.
    pub pin: Pin,
}

impl Credentials {
    /// Who joins `server`, trusting `given` (a key the host or a person
    /// gave), else the key pinned in `cache` when this device joined, else
    /// the first key seen.
    pub fn new(
        server: &str,
        join_code: &str,
        name: &str,
        device: &str,
        given: Option<pitboss_tls::Fingerprint>,
        cache: &Cache,
    ) -> anyhow::Result<Credentials> {
        let key = match given {
            Some(k) => Some(k),
            None => cache.pin(server)?,
        };
        Ok(Credentials {
            server: server.to_string(),
            join_code: join_code.to_string(),
            name: name.to_string(),
            device: device.to_string(),
            pin: Pin::to_or_first_use(key),
        })
    }

    /// An HTTP client that talks to the pinned server only.
    pub fn http_client(&self, timeout: Duration) -> anyhow::Result<reqwest::Client> {
        self.pin
            .http_client(reqwest::Client::builder().timeout(timeout))
            .context("cannot set up HTTPS")
    }

    /// `POST /api/session` with the join code; remembers the session.
    pub async fn log_in(
        &self,
        http: &reqwest::Client,
        cache: &Cache,
    ) -> Result<StoredSession, VenueError> {
        let code = normalize_code(&self.join_code);
        let answer = match pitboss_tls::pairing::slot(&code) {
            Some(slot) => self.pair(http, &code, slot).await?,
            None => self.log_in_with_code(http).await?,
        };
        let stored = StoredSession {
            token: answer.token,
            role: answer.role.as_str().to_string(),
            operator_id: answer.operator_id,
        };
        // The key that answered is the host's from now on.
        if let Some(key) = self.pin.key() {
            cache.save_pin(&self.server, key)?;
        }
        cache.save_session(&self.server, &stored)?;
        Ok(stored)
    }

    /// `POST /api/session` with a long join code.
    async fn log_in_with_code(
        &self,
        http: &reqwest::Client,
    ) -> Result<SessionResponse, VenueError> {
        let body = SessionRequest {
            join_code: normalize_code(&self.join_code),
            name: self.name.clone(),
            device: self.device.clone(),
        };
        self.post(http, "/api/session", &body).await
    }

    /// A join request: `body` as JSON to `path`, the answer read as `R`,
    /// a refusal read as the server meant it.
    async fn post<R: serde::de::DeserializeOwned>(
        &self,
        http: &reqwest::Client,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<R, VenueError> {
        let r = http
            .post(format!("{}{path}", self.server))
            .json(body)
            .send()
            .await
            .map_err(|e| unreachable(&self.server, &e))?;
        if !r.status().is_success() {
            return Err(refused(r).await);
        }
        Ok(r.json()
            .await
            .with_context(|| format!("unreadable answer to {path}"))?)
    }

    /// Joins with a pairing code without sending it: SPAKE2 with the host,
    /// whose proof must hold over the TLS key this device's handshake saw
    /// (see `pitboss_tls::pairing`). A man in the middle fails that proof:
    /// then nothing more is sent, and the key it showed is not kept.
    async fn pair(
        &self,
        http: &reqwest::Client,
        code: &str,
        slot: u8,
    ) -> Result<SessionResponse, VenueError> {
        let (exchange, message) = pitboss_tls::pairing::DeviceExchange::start(code);
        let request = PairingExchange {
            slot,
            message: hex::encode(message),
        };
        let answer: PairingAnswer = self.post(http, "/api/pairing/exchange", &request).await?;
        let seen = self
            .pin
            .key()
            .context("no TLS key was seen in the pairing exchange")?;
        let host_message = hex::decode(&answer.message).unwrap_or_default();
        let host_proof = hex::decode(&answer.proof).unwrap_or_default();
        let proof = match exchange.finish(&host_message, &host_proof, seen) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("pairing with {}: {e}", self.server);
                self.pin.unlearn();
                return Err(VenueError::PairingFailed(PAIRING_UNVERIFIED.into()));
            }
        };
        let confirm = PairingConfirm {
            exchange: answer.exchange,
            proof: hex::encode(proof),
            name: self.name.clone(),
            device: self.device.clone(),
        };
        self.post(http, "/api/pairing/confirm", &confirm).await
    }

    /// The session to call with: the remembered one, or a login on the
    /// device's own behalf. A signed-out device waits for a person; a code
    /// the server refuses (a spent pairing code, a changed join code) will
    /// not work on the next try either, so it signs the device out instead
    /// of being tried again and again.
    pub async fn session(
        &self,
        http: &reqwest::Client,
        cache: &Cache,
    ) -> Result<StoredSession, VenueError> {
        if let Some(reason) = cache.signed_out(&self.server)? {
            return Err(VenueError::SignedOut(reason));
        }
        if let Some(s) = cache.session(&self.server)? {
            return Ok(s);
        }
        match self.log_in(http, cache).await {
            Ok(s) => Ok(s),
            Err(VenueError::Unauthorized(_)) => {
                Err(self.sign_out(cache, crate::venue::refused_code_reason(&self.join_code)))
            }
            Err(VenueError::SignedOut(reason)) => Err(self.sign_out(cache, &reason)),
            // On the device's own behalf a pairing code is tried only
            // after its session was lost: by then it is spent.
            Err(VenueError::PairingFailed(_)) => {
                Err(self.sign_out(cache, crate::venue::refused_code_reason(&self.join_code)))
            }
            Err(e) => Err(e),
        }
    }

    /// Remembers that this device is signed out of the server, so that
    /// nothing logs in again on its own.
    pub fn sign_out(&self, cache: &Cache, reason: &str) -> VenueError {
        if let Err(e) = cache.mark_signed_out(&self.server, reason, wall_ms()) {
            tracing::warn!("cannot remember the sign-out: {e:#}");
        }
        VenueError::SignedOut(reason.to_string())
    }

    /// What a 401 on an authorised call means: a revoked token signs the
    /// device out for good; a token the server forgot (a new store) is
    /// dropped, so the next call logs in again if the code allows it.
    pub fn unauthorized(&self, cache: &Cache, err: VenueError) -> VenueError {
        match err {
            VenueError::SignedOut(reason) => self.sign_out(cache, &reason),
            VenueError::Unauthorized(m) => {
                if let Err(e) = cache.forget_session(&self.server) {
                    return VenueError::Local(e);
                }
                VenueError::Unauthorized(m)
            }
            e => e,
        }
    }
}

/// No answer from the server, in words a person can act on; or an answer
/// from a server without the pinned key, which is no answer at all.
pub fn unreachable(server: &str, e: &reqwest::Error) -> VenueError {
    if let Some(m) = pitboss_tls::find_mismatch(e) {
        return VenueError::KeyChanged {
            server: server.to_string(),
            mismatch: m,
        };
    }
    let reason = if e.is_timeout() {
        "no answer in time".to_string()
    } else if e.is_connect() {
        "connection refused or no route".to_string()
    } else {
        e.to_string()
    };
    VenueError::Unreachable {
        server: server.to_string(),
        reason,
    }
}

/// Reads a refused answer: a 401 is [`VenueError::SignedOut`] when the
/// token was revoked, [`VenueError::Unauthorized`] otherwise; anything else
/// keeps the server's error code, message, current record and retry hint.
pub async fn refused(r: reqwest::Response) -> VenueError {
    let status = r.status().as_u16();
    let header_retry = r
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| s * 1000);
    let bytes = r.bytes().await.unwrap_or_default();
    refusal(status, &bytes, header_retry)
}

/// [`refused`] on a status and body already read (the WebSocket handshake
/// hands its answer over whole).
pub fn refusal(status: u16, body: &[u8], header_retry_ms: Option<u64>) -> VenueError {
    let body: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let message = body["message"]
        .as_str()
        .unwrap_or("the server refused the request")
        .to_string();
    if status == 401 {
        if body["revoked"].as_bool() == Some(true) {
            return VenueError::SignedOut(REVOKED.into());
        }
        return VenueError::Unauthorized(message);
    }
    VenueError::Refused {
        status,
        code: body["error"].as_str().unwrap_or("invalid").to_string(),
        message,
        current: body.get("current").cloned(),
        retry_after_ms: body["retry_after_ms"].as_u64().or(header_retry_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::refusal;
    use crate::venue::{VenueError, REVOKED};

    #[test]
    fn a_revoked_token_signs_out_and_an_unknown_one_does_not() {
        let revoked = br#"{"error":"unauthorized","message":"revoked","revoked":true}"#;
        assert!(matches!(refusal(401, revoked, None), VenueError::SignedOut(r) if r == REVOKED));
        let unknown = br#"{"error":"unauthorized","message":"unknown token"}"#;
        assert!(
            matches!(refusal(401, unknown, None), VenueError::Unauthorized(m) if m == "unknown token")
        );
    }

    #[test]
    fn a_throttle_keeps_its_retry_hint_from_the_body_or_the_header() {
        let body = br#"{"error":"rate_limited","message":"slow down","retry_after_ms":1500}"#;
        assert!(matches!(
            refusal(429, body, Some(9000)),
            VenueError::Refused { status: 429, retry_after_ms: Some(1500), ref code, .. } if code == "rate_limited"
        ));
        assert!(matches!(
            refusal(429, b"", Some(2000)),
            VenueError::Refused {
                retry_after_ms: Some(2000),
                ..
            }
        ));
    }
}
