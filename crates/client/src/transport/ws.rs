//! The WebSocket link: dial with a session token, send [`ClientMsg`]s,
//! receive [`ServerMsg`]s. What a close or a refused upgrade means is read
//! here, once.

use std::time::Duration;

use anyhow::Context as _;
use futures_util::{SinkExt, StreamExt};
use pitboss_core::protocol::{ClientMsg, ServerMsg};
use pitboss_tls::{KeyMismatch, Pin, TlsStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::{HeaderValue, AUTHORIZATION};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::venue::VenueError;

/// A frame that cannot be written within this long goes to a dead socket:
/// a stalled peer stops reading, and once the kernel's buffer is full a
/// write would wait forever.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the handshake may take before the server counts as unreachable.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a dial failed.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The server answered the upgrade with a 401: see
    /// [`super::refusal`] for revoked vs forgotten tokens.
    #[error("{0}")]
    Unauthorized(VenueError),
    /// Something answered the upgrade with plain HTTP: a proxy that blocks
    /// WebSockets, most likely.
    #[error("the WebSocket upgrade was refused with HTTP {0}")]
    Refused(u16),
    /// The server does not hold the pinned key: nothing was sent.
    #[error(transparent)]
    KeyChanged(KeyMismatch),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// What arrived on the socket. Handed on at once, never stored, so the
/// size of a message costs nothing worth boxing it for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Incoming {
    /// A message from the server.
    Msg(ServerMsg),
    /// A frame that proves the server alive but carries no message (a
    /// WebSocket ping, or text this client cannot read).
    Heard,
    /// The server closed with 1008: a coordinator revoked this device.
    Revoked,
    /// The socket is gone (closed, reset, or ended).
    Gone,
}

pub struct WsLink {
    socket: WebSocketStream<TlsStream>,
}

/// `wss://host:port/ws` for the server's `https://` base.
fn url(server: &str) -> String {
    format!("{}/ws", server.replacen("https://", "wss://", 1))
}

impl WsLink {
    /// Opens the socket, over TLS to the server holding the pinned key.
    /// The token goes in the `Authorization` header, not the URL, where
    /// proxies and server logs would keep it; and only once the handshake
    /// proved the key.
    pub async fn dial(server: &str, token: &str, pin: &Pin) -> Result<WsLink, DialError> {
        let mut request = url(server)
            .into_client_request()
            .context("not a WebSocket address")?;
        let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
            .context("a session token that cannot be sent")?;
        request.headers_mut().insert(AUTHORIZATION, bearer);
        let attempt = tokio::time::timeout(DIAL_TIMEOUT, pin.websocket(request, None))
            .await
            .context("WebSocket handshake timed out")?;
        match attempt {
            Ok((socket, _)) => Ok(WsLink { socket }),
            Err(WsError::Http(resp)) if resp.status() == 401 => Err(DialError::Unauthorized(
                super::refusal(401, resp.body().as_deref().unwrap_or_default(), None),
            )),
            Err(WsError::Http(resp)) => Err(DialError::Refused(resp.status().as_u16())),
            Err(e) => match pitboss_tls::find_mismatch(&e) {
                Some(m) => Err(DialError::KeyChanged(m)),
                None => Err(DialError::Other(e.into())),
            },
        }
    }

    /// Sends in order; an error means the socket is dead.
    pub async fn send(&mut self, msgs: Vec<ClientMsg>) -> anyhow::Result<()> {
        for m in msgs {
            let text = serde_json::to_string(&m)?;
            tokio::time::timeout(SEND_TIMEOUT, self.socket.send(Message::Text(text.into())))
                .await
                .context("the server stopped reading")??;
        }
        Ok(())
    }

    /// The next frame. Cancel-safe, so it can wait in a `select!`.
    pub async fn recv(&mut self) -> Incoming {
        match self.socket.next().await {
            Some(Ok(Message::Text(t))) => match serde_json::from_str(&t) {
                Ok(m) => Incoming::Msg(m),
                Err(e) => {
                    tracing::warn!("unreadable frame from server: {e}");
                    Incoming::Heard
                }
            },
            Some(Ok(Message::Close(Some(c)))) if c.code == CloseCode::Policy => {
                tracing::info!("the server closed the connection: {}", c.reason);
                Incoming::Revoked
            }
            Some(Ok(Message::Close(c))) => {
                tracing::info!("server closed the connection: {c:?}");
                Incoming::Gone
            }
            Some(Ok(_)) => Incoming::Heard,
            Some(Err(e)) => {
                tracing::debug!("socket error: {e}");
                Incoming::Gone
            }
            None => Incoming::Gone,
        }
    }

    /// Closes politely, without waiting on a peer that does not answer.
    pub async fn close(mut self) {
        drop(tokio::time::timeout(SEND_TIMEOUT, self.socket.close(None)).await);
    }
}
