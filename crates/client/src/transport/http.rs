//! The HTTP fallback link, for a network whose proxy refuses WebSocket
//! upgrades: the same messages as the socket, fetched by request. Each
//! answer is turned into the [`ServerMsg`] the WebSocket would have
//! carried, so the protocol state cannot tell the two apart.

use anyhow::Context as _;
use pitboss_core::protocol::{OpRequest, ServerMsg};
use serde_json::{json, Value};

use crate::cache::PendingOp;
use crate::venue::VenueError;

pub struct HttpLink {
    http: reqwest::Client,
    server: String,
    event_id: String,
}

/// What `GET /changes` said.
pub enum Changes {
    /// The changes after the seq asked for, in order.
    After(Vec<ServerMsg>),
    /// The server no longer keeps changes that old: take a snapshot.
    Gone,
}

impl HttpLink {
    pub fn new(http: reqwest::Client, server: &str, event_id: &str) -> HttpLink {
        HttpLink {
            http,
            server: server.to_string(),
            event_id: event_id.to_string(),
        }
    }

    fn event_url(&self, rest: &str) -> String {
        format!("{}/api/events/{}/{rest}", self.server, self.event_id)
    }

    /// Is the server there over plain HTTP? Asked when the WebSocket was
    /// refused, to tell a blocking proxy from a host that is down.
    pub async fn reachable(&self) -> bool {
        let r = self
            .http
            .get(format!("{}/api/health", self.server))
            .timeout(std::time::Duration::from_secs(3))
            .send()
            .await;
        matches!(r, Ok(r) if r.status().is_success())
    }

    /// The server's clock, for a time sample.
    pub async fn server_time_ms(&self) -> anyhow::Result<Option<i64>> {
        let health: Value = self
            .http
            .get(format!("{}/api/health", self.server))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(health["server_time_ms"].as_i64())
    }

    /// Sends one op; the answer as the socket's `ack` or `rejected`.
    pub async fn op(&self, token: &str, p: &PendingOp) -> Result<ServerMsg, VenueError> {
        let body = OpRequest {
            op_id: p.op_id.clone(),
            op: serde_json::to_value(&p.op).context("an op that cannot be written")?,
        };
        let r = self
            .http
            .post(self.event_url("ops"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .map_err(|e| super::unreachable(&self.server, &e))?;
        let status = r.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(super::refused(r).await);
        }
        if status.is_server_error() {
            return Err(
                anyhow::anyhow!("the server could not take op {} ({status})", p.op_id).into(),
            );
        }
        let mut msg: Value = r.json().await.context("unreadable answer to an op")?;
        msg["type"] = json!(if status.is_success() {
            "ack"
        } else {
            "rejected"
        });
        msg["op_id"] = json!(p.op_id);
        Ok(serde_json::from_value(msg).context("unreadable answer to an op")?)
    }

    /// The changes after `after`, as the socket's `change` messages.
    pub async fn changes(&self, token: &str, after: u64) -> Result<Changes, VenueError> {
        let r = self.get(token, &format!("changes?after={after}")).await?;
        if r.status() == reqwest::StatusCode::GONE {
            return Ok(Changes::Gone);
        }
        if !r.status().is_success() {
            return Err(super::refused(r).await);
        }
        let body: Value = r.json().await.context("unreadable changes")?;
        let mut out = Vec::new();
        for mut c in body["changes"].as_array().cloned().unwrap_or_default() {
            c["type"] = json!("change");
            out.push(serde_json::from_value(c).context("unreadable change")?);
        }
        Ok(Changes::After(out))
    }

    /// The whole event, as the socket's `snapshot` message.
    pub async fn snapshot(&self, token: &str) -> Result<ServerMsg, VenueError> {
        let r = self.get(token, "snapshot").await?;
        if !r.status().is_success() {
            return Err(super::refused(r).await);
        }
        let mut body: Value = r.json().await.context("unreadable snapshot")?;
        body["type"] = json!("snapshot");
        Ok(serde_json::from_value(body).context("unreadable snapshot")?)
    }

    async fn get(&self, token: &str, rest: &str) -> Result<reqwest::Response, VenueError> {
        self.http
            .get(self.event_url(rest))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| super::unreachable(&self.server, &e))
    }
}
