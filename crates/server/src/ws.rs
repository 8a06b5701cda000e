//! The WebSocket half of the public API: one task pair per connection.
//!
//! The reader parses frames and talks to the writer; the sender owns the
//! socket's write half and drains the connection's bounded queue, writing
//! everything queued and flushing once (one flush per message falls behind
//! at thousands of subscribers). When the writer finds this queue full it
//! cancels `kill`, and the connection closes with 1013 rather than letting
//! one slow screen hold up the room; the client resumes from its last seq.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use pitboss_core::limits::MAX_MESSAGE_BYTES;

/// How large a message tungstenite reads whole before it gives up. Past
/// [`MAX_MESSAGE_BYTES`] a message is refused either way (close 1009), but
/// one read whole is refused with nothing of it left unread: a socket
/// closed with unread bytes is reset by the kernel, and over TLS the reset
/// can overtake the 1009 close, so the peer would never learn why. Twice
/// the limit covers the near misses a client actually sends, while a
/// peer's largest buffer per connection stays 128 KiB.
const READ_THROUGH_BYTES: usize = 2 * MAX_MESSAGE_BYTES;

/// A data message's size, to hold against [`MAX_MESSAGE_BYTES`].
fn message_bytes(m: &Message) -> usize {
    match m {
        Message::Text(t) => t.len(),
        Message::Binary(b) => b.len(),
        _ => 0,
    }
}

/// The close for a message over the limit.
fn too_big() -> Outbound {
    Outbound::close(
        close::TOO_BIG,
        &format!("message larger than {MAX_MESSAGE_BYTES} bytes"),
    )
}
use pitboss_core::ops::Actor;
use pitboss_core::protocol::{ClientMsg, ServerMsg};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::auth::Lookup;
use crate::error::ApiError;
use crate::fanout::{catch_up_bytes, Frame, Outbound, Subscriber};
use crate::http::{authenticate_token, check_op, token_of};
use crate::limits::{ConnLimiter, ConnSlot};
use crate::writer::OpOutcome;
use crate::AppState;

/// Frames a connection may have queued before it counts as too slow.
pub const QUEUE_FRAMES: usize = 1024;
/// Each connection's read buffer (see [`upgrade`]).
pub const READ_BUFFER_BYTES: usize = 1024;
/// Events one connection may subscribe to at once.
pub const MAX_SUBSCRIPTIONS: usize = 64;
/// A peer that takes none of what is written to it for this long is cut:
/// a stalled reader must not hold its queue, its task and its socket.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// How long the close of a connection the server cuts (revoked: 1008; too
/// slow: 1013) may take before the socket is dropped anyway: its peer may
/// be reading nothing.
const REVOKE_GRACE: Duration = Duration::from_millis(250);

/// Close codes this server uses.
pub mod close {
    /// Server shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// A message over 64 KiB.
    pub const TOO_BIG: u16 = 1009;
    /// The connection could not keep up; reconnect and resume.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// The device was revoked: do not reconnect with this token.
    pub const POLICY: u16 = 1008;
}

/// The close reason a revoked device's sockets get.
pub const REVOKED_REASON: &str = "revoked: this device was revoked by a coordinator";

pub async fn upgrade(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    parts: Parts,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(token) = token_of(&parts) else {
        return ApiError::unauthorized(
            "the WebSocket needs a session token: Authorization: Bearer TOKEN or /ws?token=TOKEN",
        )
        .into_response();
    };
    let actor = match authenticate_token(&st, &token) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let slot = match st.limits.connect(peer.ip()) {
        Ok(slot) => slot,
        Err(t) => return ApiError::rate_limited(t).into_response(),
    };
    // 1 KiB read buffer: tungstenite allocates and zero-fills it when the
    // connection opens, so every idle screen pays for it, and the default
    // (128 KiB) would be most of what an idle screen costs. An op is a few
    // hundred bytes; a bigger message grows the buffer while it is read.
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_message_size(READ_THROUGH_BYTES)
        .max_frame_size(READ_THROUGH_BYTES)
        .on_upgrade(move |socket| {
            let tracker = st.tracker.clone();
            let peer = Peer {
                addr: peer.ip(),
                _slot: slot,
            };
            // Split here, not inside: the connection future keeps its
            // arguments for its whole life, and the unsplit socket is 368
            // bytes against two pointers.
            let (sink, stream) = socket.split();
            tracker.track_future(connection(st, actor, token, peer, sink, stream))
        })
}

fn frame(msg: &ServerMsg) -> Frame {
    Frame::from(serde_json::to_string(msg).unwrap_or_default())
}

fn error_frame(e: &ApiError) -> Frame {
    frame(&ServerMsg::Error {
        error: e.body.error.clone(),
        message: e.body.message.clone(),
    })
}

fn rejected_frame(op_id: &str, e: ApiError) -> Frame {
    frame(&ServerMsg::Rejected {
        op_id: op_id.to_string(),
        error: e.body.error,
        message: e.body.message,
        current: e.body.current,
        retry_after_ms: e.body.retry_after_ms,
    })
}

fn outcome_frame(op_id: &str, outcome: Result<OpOutcome, ApiError>) -> Frame {
    match outcome {
        Ok(OpOutcome::Accepted(a)) => frame(&ServerMsg::Ack {
            op_id: a.op_id,
            seq: a.seq,
            result: a.result,
        }),
        Ok(OpOutcome::Rejected { body, .. }) => frame(&ServerMsg::Rejected {
            op_id: op_id.to_string(),
            error: body.error,
            message: body.message,
            current: body.current,
            retry_after_ms: body.retry_after_ms,
        }),
        Err(e) => rejected_frame(op_id, e),
    }
}

/// Where a connection comes from, holding its place in the address's count.
struct Peer {
    addr: IpAddr,
    _slot: Option<ConnSlot>,
}

async fn connection(
    st: Arc<AppState>,
    actor: Actor,
    token: String,
    peer: Peer,
    mut sink: SplitSink<WebSocket, Message>,
    mut stream: SplitStream<WebSocket>,
) {
    let conn_id = st.next_conn.fetch_add(1, Ordering::Relaxed);
    st.open_websockets.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::channel::<Outbound>(QUEUE_FRAMES);
    let kill = CancellationToken::new();
    let revoke = CancellationToken::new();
    let queued = Arc::new(AtomicUsize::new(0));
    // Registered, then the token checked again: a revoke that commits
    // between the upgrade's check and here either finds this registration
    // (and closes it) or is seen by the second check.
    let live = crate::LiveConn {
        conn_id,
        revoke: revoke.clone(),
    };
    if matches!(st.auth.lookup(&token), Lookup::Valid(..)) {
        st.register_live(&actor.operator_id, live);
        if !matches!(st.auth.lookup(&token), Lookup::Valid(..)) {
            st.close_device(&actor.operator_id);
        }
    } else {
        live.close_revoked();
    }
    let mut limiter = st.limits.conn_limiter();
    let shutdown = st.shutdown.clone();
    tracing::debug!(conn_id, name = actor.name, "websocket open");

    let sender = {
        let kill = kill.clone();
        let revoke = revoke.clone();
        let queued = queued.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let close = |code: u16, reason: &str| {
                Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.to_string().into(),
                }))
            };
            // Made once, not per message: a `cancelled()` future registers
            // with its token when first polled, and `shutdown` is one token
            // shared by every connection, so re-creating these per frame
            // put every socket's every message through one shared lock.
            let killed = kill.cancelled();
            let revoked = revoke.cancelled();
            let stopping = shutdown.cancelled();
            tokio::pin!(killed, revoked, stopping);
            loop {
                tokio::select! {
                    biased;
                    () = &mut revoked => {
                        let bye = sink.send(close(close::POLICY, REVOKED_REASON));
                        drop(tokio::time::timeout(REVOKE_GRACE, bye).await);
                        break;
                    }
                    () = &mut killed => {
                        let bye = sink.send(close(close::TRY_AGAIN_LATER, "too slow to keep up: reconnect and resume"));
                        drop(tokio::time::timeout(REVOKE_GRACE, bye).await);
                        break;
                    }
                    () = &mut stopping => {
                        drop(sink.send(close(close::GOING_AWAY, "server shutting down")).await);
                        break;
                    }
                    next = rx.recv() => {
                        // The reader ended (the peer closed, or errored): finish
                        // the closing handshake so a clean close is seen as
                        // one (1000), not as an abnormal 1006.
                        let Some(first) = next else {
                            drop(sink.close().await);
                            break;
                        };
                        let mut pending = Some(first);
                        let mut ok = true;
                        while let Some(item) = pending.take() {
                            ok = match item {
                                Outbound::Frame(f) => put(&mut sink, Message::Text(f.text())).await,
                                Outbound::Batch(fs) => {
                                    let mut ok = true;
                                    for f in fs.iter() {
                                        ok = put(&mut sink, Message::Text(f.text())).await;
                                        if !ok { break; }
                                    }
                                    queued.fetch_sub(catch_up_bytes(&fs), Ordering::AcqRel);
                                    ok
                                }
                                // A ping racing the peer's close frame fails to
                                // send; that must not cut the closing handshake.
                                Outbound::Ping => {
                                    put(&mut sink, Message::Ping(Default::default())).await;
                                    true
                                }
                                Outbound::Close(frame) => {
                                    let bye = sink.send(Message::Close(Some(*frame)));
                                    drop(tokio::time::timeout(REVOKE_GRACE, bye).await);
                                    false
                                }
                            };
                            if !ok { break; }
                            pending = rx.try_recv().ok();
                        }
                        let flushed = ok
                            && matches!(tokio::time::timeout(WRITE_DEADLINE, sink.flush()).await, Ok(Ok(())));
                        if !flushed {
                            break;
                        }
                    }
                }
            }
            kill.cancel();
        })
    };

    let mut subscriptions: HashSet<String> = HashSet::new();
    let mut last_heard = tokio::time::Instant::now();
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + st.ws_ping_every,
        st.ws_ping_every,
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let killed = kill.cancelled();
    let revoked = revoke.cancelled();
    let stopping = shutdown.cancelled();
    let dead = tokio::time::sleep_until(last_heard + st.ws_dead_after);
    tokio::pin!(killed, revoked, stopping, dead);
    // Answers awaited on the side, at most a queue's worth at once: a peer
    // that sends ops and reads nothing waits here instead of piling up
    // tasks.
    let answers = Arc::new(Semaphore::new(QUEUE_FRAMES));
    loop {
        let msg = tokio::select! {
            () = &mut killed => break,
            () = &mut revoked => break,
            () = &mut stopping => break,
            () = &mut dead => {
                tracing::info!(conn_id, name = actor.name, "no word from this client for {:?}: dropping it", st.ws_dead_after);
                break;
            }
            _ = ping.tick() => {
                // try_send: a full queue means a slow reader, which the
                // writer already handles; a ping must never block here.
                drop(tx.try_send(Outbound::Ping));
                continue;
            }
            m = stream.next() => m,
        };
        last_heard = tokio::time::Instant::now();
        dead.as_mut().reset(last_heard + st.ws_dead_after);
        match msg {
            None => break,
            Some(Ok(m)) if message_bytes(&m) > MAX_MESSAGE_BYTES => {
                drop(tx.send(too_big()).await);
                tracing::debug!(conn_id, "websocket message over the limit: closing");
                break;
            }
            Some(Err(e)) => {
                let text = e.to_string();
                // tungstenite reports an oversized message as a capacity
                // error ("Message too long" / "Space limit exceeded").
                if text.contains("too long") || text.contains("Space limit") {
                    drop(tx.send(too_big()).await);
                }
                tracing::debug!(conn_id, "websocket read error: {text}");
                break;
            }
            Some(Ok(Message::Text(text))) => {
                // Boxed: its state machine is large and only lives while a
                // message is handled; inline, every idle connection would
                // carry it.
                st.touch(&actor.operator_id);
                Box::pin(handle_text(
                    &st,
                    &Conn {
                        actor: &actor,
                        token: &token,
                        conn_id,
                        addr: peer.addr,
                        tx: &tx,
                        kill: &kill,
                        revoke: &revoke,
                        answers: &answers,
                        queued: &queued,
                    },
                    &mut limiter,
                    &mut subscriptions,
                    &text,
                ))
                .await;
            }
            Some(Ok(Message::Binary(_))) => {
                let e = ApiError::invalid(
                    "binary frames are not accepted: send one JSON object per text frame",
                );
                drop(tx.send(Outbound::Frame(error_frame(&e))).await);
            }
            Some(Ok(Message::Close(_))) => break,
            Some(Ok(_)) => {} // ping/pong: answered by the library
        }
    }
    st.writer.disconnect(conn_id).await;
    st.unregister_live(&actor.operator_id, conn_id);
    drop(tx);
    // Let the sender flush what is queued (acks, a close frame), briefly. A
    // peer that stopped reading leaves the sender stuck in a write: abort it,
    // which drops the socket, rather than keep it forever.
    let mut sender = sender;
    // Cut by the server (revoked, or too slow to keep up): its peer may be
    // reading nothing, so its close gets the short grace too.
    let grace = if revoke.is_cancelled() || kill.is_cancelled() {
        REVOKE_GRACE
    } else {
        Duration::from_secs(2)
    };
    if tokio::time::timeout(grace, &mut sender).await.is_err() {
        sender.abort();
    }
    st.open_websockets.fetch_sub(1, Ordering::Relaxed);
    tracing::debug!(conn_id, "websocket closed");
}

/// Writes one message, giving up when the peer takes none of it for
/// [`WRITE_DEADLINE`]. Per message, not per batch: a slow screen still
/// reading a long catch-up keeps its connection.
async fn put(sink: &mut SplitSink<WebSocket, Message>, m: Message) -> bool {
    match tokio::time::timeout(WRITE_DEADLINE, sink.feed(m)).await {
        Ok(r) => r.is_ok(),
        Err(_) => {
            tracing::info!("a peer took nothing for {WRITE_DEADLINE:?}: dropping it");
            false
        }
    }
}

/// What a frame handler knows of its connection.
struct Conn<'a> {
    actor: &'a Actor,
    /// Looked up again for every op: a revoke holds even on a connection
    /// whose close has not gone out yet.
    token: &'a str,
    conn_id: u64,
    addr: IpAddr,
    tx: &'a mpsc::Sender<Outbound>,
    kill: &'a CancellationToken,
    revoke: &'a CancellationToken,
    answers: &'a Arc<Semaphore>,
    queued: &'a Arc<AtomicUsize>,
}

async fn handle_text(
    st: &Arc<AppState>,
    c: &Conn<'_>,
    limiter: &mut ConnLimiter,
    subscriptions: &mut HashSet<String>,
    text: &str,
) {
    let (actor, conn_id, tx, kill) = (c.actor, c.conn_id, c.tx, c.kill);
    let reply = |f: Frame| async move { drop(tx.send(Outbound::Frame(f)).await) };
    let msg: ClientMsg = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => {
            let e = ApiError::invalid(format!("cannot read this frame: {e}"));
            return reply(error_frame(&e)).await;
        }
    };
    match msg {
        ClientMsg::Ping { client_time_ms } => {
            reply(frame(&ServerMsg::Pong {
                client_time_ms,
                server_time_ms: st.clock.now_ms(),
                changes_through_ms: st.horizon.as_ref().map(|h| h.through_ms(&st.clock)),
            }))
            .await;
        }
        ClientMsg::Subscribe { event_id, after } => {
            if !subscriptions.contains(&event_id) && subscriptions.len() >= MAX_SUBSCRIPTIONS {
                let e = ApiError::invalid(format!(
                    "at most {MAX_SUBSCRIPTIONS} subscriptions per connection"
                ));
                return reply(error_frame(&e)).await;
            }
            let sub = Subscriber {
                conn_id,
                tx: tx.clone(),
                kill: kill.clone(),
                queued: c.queued.clone(),
            };
            match st.writer.subscribe(event_id.clone(), after, sub).await {
                Ok(()) => {
                    subscriptions.insert(event_id);
                }
                Err(e) => reply(error_frame(&e)).await,
            }
        }
        ClientMsg::Unsubscribe { event_id } => {
            st.writer.unsubscribe(event_id.clone(), conn_id).await;
            subscriptions.remove(&event_id);
            reply(frame(&ServerMsg::Unsubscribed { event_id })).await;
        }
        ClientMsg::Op {
            op_id,
            event_id,
            op,
        } => {
            if !matches!(st.auth.lookup(c.token), Lookup::Valid(..)) {
                c.revoke.cancel();
                return reply(rejected_frame(&op_id, ApiError::revoked())).await;
            }
            // Before anything else: a flood is refused at the cost of one
            // parse, and the op is not remembered, so it may be resent.
            if let Err(t) = st.limits.op(limiter, c.addr) {
                return reply(rejected_frame(&op_id, ApiError::rate_limited(t))).await;
            }
            let op = match check_op(actor, &op_id, op) {
                Ok(op) => op,
                Err(e) => return reply(rejected_frame(&op_id, e)).await,
            };
            // Queue now, in frame order; await the answer on the side so a
            // client may pipeline ops without waiting for each ack.
            match st
                .writer
                .queue_op(
                    event_id,
                    op_id.clone(),
                    op,
                    actor.clone(),
                    c.addr.to_string(),
                )
                .await
            {
                Ok(rx) => {
                    let tx = tx.clone();
                    let Ok(permit) = c.answers.clone().acquire_owned().await else {
                        return;
                    };
                    tokio::spawn(async move {
                        let _permit = permit;
                        let outcome = rx.await.unwrap_or_else(|_| {
                            Err(ApiError::unavailable("the server is shutting down"))
                        });
                        drop(
                            tx.send(Outbound::Frame(outcome_frame(&op_id, outcome)))
                                .await,
                        );
                    });
                }
                Err(e) => reply(rejected_frame(&op_id, e)).await,
            }
        }
    }
}
