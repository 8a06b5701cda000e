//! One venue server as the app sees it before it follows an event: who we
//! are there (the session), the list of events, creating one.
//!
//! Nothing here touches the network until asked, so the app can start
//! following the last event from its cache with the host unreachable.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use pitboss_core::protocol::{CreateEvent, EventSummary, SessionResponse};
use serde_json::{json, Value};

use crate::cache::{Cache, StoredSession};
use crate::engine::{Client, Config};

/// Why a call to the server failed, in the terms the UI shows.
#[derive(Debug, thiserror::Error)]
pub enum VenueError {
    /// No answer: the host is down, asleep or unreachable.
    #[error("cannot reach {server}: {reason}")]
    Unreachable { server: String, reason: String },
    /// Wrong join code or a token the server no longer knows.
    #[error("{0}")]
    Unauthorized(String),
    /// The server answered with an error body.
    #[error("{message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
        current: Option<Value>,
    },
    #[error(transparent)]
    Local(#[from] anyhow::Error),
}

#[derive(Debug, Clone)]
pub struct VenueConfig {
    /// `http://host:port`.
    pub server: String,
    pub join_code: String,
    pub name: String,
    pub device: String,
    pub cache_path: PathBuf,
}

/// Normalises what a person types ("192.168.1.20:7878", "pitboss.local",
/// "http://10.0.0.5:7878/") into a base URL.
pub fn server_url(address: &str) -> Result<String, String> {
    let a = address.trim().trim_end_matches('/');
    if a.is_empty() {
        return Err("enter the host's address, e.g. 192.168.1.20:7878".into());
    }
    let with_scheme = if a.starts_with("http://") || a.starts_with("https://") {
        a.to_string()
    } else {
        format!("http://{a}")
    };
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
    cache: Cache,
    http: reqwest::Client,
}

impl Venue {
    pub fn new(cfg: VenueConfig) -> anyhow::Result<Venue> {
        let cache = Cache::open(&cfg.cache_path)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        Ok(Venue { cfg, cache, http })
    }

    pub fn server(&self) -> &str {
        &self.cfg.server
    }

    /// The session remembered for this server, if any (no network).
    pub fn stored_session(&self) -> Option<StoredSession> {
        self.cache.session(&self.cfg.server).ok().flatten()
    }

    fn unreachable(&self, e: &reqwest::Error) -> VenueError {
        let reason = if e.is_timeout() {
            "no answer within 5 s".to_string()
        } else if e.is_connect() {
            "connection refused or no route".to_string()
        } else {
            e.to_string()
        };
        VenueError::Unreachable {
            server: self.cfg.server.clone(),
            reason,
        }
    }

    async fn refused(r: reqwest::Response) -> VenueError {
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let message = body["message"]
            .as_str()
            .unwrap_or("the server refused the request")
            .to_string();
        if status == 401 {
            return VenueError::Unauthorized(message);
        }
        VenueError::Refused {
            status,
            code: body["error"].as_str().unwrap_or("invalid").to_string(),
            message,
            current: body.get("current").cloned(),
        }
    }

    /// Logs in with the join code and remembers the session.
    pub async fn login(&self) -> Result<StoredSession, VenueError> {
        let r = self
            .http
            .post(format!("{}/api/session", self.cfg.server))
            .json(&json!({"join_code": self.cfg.join_code, "name": self.cfg.name, "device": self.cfg.device}))
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        if !r.status().is_success() {
            return Err(Self::refused(r).await);
        }
        let s: SessionResponse = r.json().await.context("unreadable session answer")?;
        let stored = StoredSession {
            token: s.token,
            role: s.role.as_str().to_string(),
            operator_id: s.operator_id,
        };
        self.cache.save_session(&self.cfg.server, &stored)?;
        Ok(stored)
    }

    async fn token(&self) -> Result<String, VenueError> {
        match self.stored_session() {
            Some(s) => Ok(s.token),
            None => Ok(self.login().await?.token),
        }
    }

    /// Sends an authorised request, logging in again once if the server no
    /// longer knows the token.
    async fn call(
        &self,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, VenueError> {
        for attempt in 0..2 {
            let token = self.token().await?;
            let r = build(&self.http, &self.cfg.server)
                .bearer_auth(token)
                .send()
                .await
                .map_err(|e| self.unreachable(&e))?;
            if r.status().as_u16() == 401 && attempt == 0 {
                self.cache.forget_session(&self.cfg.server)?;
                continue;
            }
            if !r.status().is_success() {
                return Err(Self::refused(r).await);
            }
            return Ok(r);
        }
        Err(VenueError::Unauthorized(
            "the server refused the session".into(),
        ))
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
        Client::start(c)
    }
}

#[cfg(test)]
mod tests {
    use super::server_url;

    #[test]
    fn addresses_people_type_become_urls() {
        assert_eq!(
            server_url("192.168.1.20:7878").as_deref(),
            Ok("http://192.168.1.20:7878")
        );
        assert_eq!(
            server_url(" 192.168.1.20 ").as_deref(),
            Ok("http://192.168.1.20:7878")
        );
        assert_eq!(
            server_url("http://host.local:9000/").as_deref(),
            Ok("http://host.local:9000")
        );
        assert_eq!(server_url("[::1]").as_deref(), Ok("http://[::1]:7878"));
        assert!(server_url("").is_err());
        assert!(server_url("a b").is_err());
        assert!(server_url("host/path").is_err());
    }
}
