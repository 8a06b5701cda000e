//! The server's TCP listener, with what a venue's open Wi-Fi needs before
//! HTTP even starts: a cap on the connections one address may hold open
//! (a laptop has about 1,024 files to give; a stranger opening a thousand
//! idle connections must not take them), and a deadline for a new
//! connection's first bytes (a connection that says nothing is closed after
//! [`FIRST_BYTES_WITHIN`] instead of being held forever).
//!
//! Then TLS, on the same port ([`TlsListener`]): handshakes run each in
//! their own task, so one slow or silent peer never holds up the next
//! connection, and only finished handshakes reach HTTP. A peer that speaks
//! plain HTTP gets a plain answer saying to use `https://`, and is closed.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Sleep;
use tokio_rustls::server::TlsStream;

/// How long a new connection may stay silent before it is closed.
pub const FIRST_BYTES_WITHIN: Duration = Duration::from_secs(10);

/// Open TCP connections per source address, `None` without a cap.
type Counts = Arc<Mutex<HashMap<IpAddr, u32>>>;

pub struct CappedListener {
    inner: TcpListener,
    counts: Counts,
    per_address: Option<u32>,
}

impl CappedListener {
    /// `per_address`: the most TCP connections one address may hold open
    /// (HTTP and WebSocket together); `None` for load tests.
    pub fn new(inner: TcpListener, per_address: Option<u32>) -> CappedListener {
        CappedListener {
            inner,
            counts: Counts::default(),
            per_address,
        }
    }

    /// Counts a new connection from `ip`; false when it would go past the cap.
    fn admit(&self, ip: IpAddr) -> bool {
        let Some(cap) = self.per_address else {
            return true;
        };
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_default();
        if *n >= cap {
            return false;
        }
        *n += 1;
        true
    }
}

impl axum::serve::Listener for CappedListener {
    type Io = Counted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Counted, SocketAddr) {
        loop {
            let (tcp, addr) = match self.inner.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // Out of files, most likely: give connections time to close.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let ip = canonical(addr.ip());
            if !self.admit(ip) {
                tracing::debug!(%ip, "too many connections from one address: closing a new one");
                continue;
            }
            // Nagle's algorithm would hold a small frame written while the
            // previous one is unacknowledged until the peer's delayed ACK
            // (up to 40 ms): changes in a burst would reach screens late.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY: {e}");
            }
            let counted = Counted {
                tcp,
                first_bytes: Some(Box::pin(tokio::time::sleep(FIRST_BYTES_WITHIN))),
                release: self.per_address.map(|_| (self.counts.clone(), ip)),
            };
            return (counted, addr);
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// Serves TLS with the server's key on a [`CappedListener`].
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<Counted>, SocketAddr)>,
    addr: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

impl TlsListener {
    pub fn new(mut tcp: CappedListener, config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
        let addr = tcp.inner.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let (tx, ready) = mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let (conn, peer) = axum::serve::Listener::accept(&mut tcp).await;
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match handshake(conn, peer, &acceptor).await {
                        Ok(tls) => drop(tx.send((tls, peer)).await),
                        Err(e) => tracing::debug!(%peer, "no TLS session: {e}"),
                    }
                });
            }
        });
        Ok(TlsListener {
            ready,
            addr,
            accepting,
        })
    }
}

/// Lets the port go with the listener: a restarted host binds it again.
impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<Counted>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        match self.ready.recv().await {
            Some(x) => x,
            // The accepting task is gone only when this listener is
            // dropped, so this is never reached while serving.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// Reads the peer's first byte (within [`FIRST_BYTES_WITHIN`]): a TLS
/// handshake is finished, anything else is told to use HTTPS and closed.
async fn handshake(
    mut conn: Counted,
    peer: SocketAddr,
    acceptor: &tokio_rustls::TlsAcceptor,
) -> io::Result<TlsStream<Counted>> {
    let within = |e| io::Error::new(io::ErrorKind::TimedOut, e);
    let mut first = [0u8; 1];
    let n = tokio::time::timeout(FIRST_BYTES_WITHIN, conn.tcp.peek(&mut first))
        .await
        .map_err(|_| within("nothing sent within 10 s of connecting"))??;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if first[0] != TLS_HANDSHAKE {
        tracing::debug!(%peer, "a plain-HTTP request on the TLS port: telling it to use https");
        let body = r#"{"error":"tls_required","message":"This Pitboss server speaks HTTPS only: use https:// (and wss:// for the WebSocket) with the same address"}"#;
        let answer = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        drop(
            tokio::time::timeout(
                Duration::from_secs(2),
                conn.tcp.write_all(answer.as_bytes()),
            )
            .await,
        );
        drop(conn.tcp.shutdown().await);
        return Err(io::Error::other("plain HTTP on the TLS port"));
    }
    tokio::time::timeout(FIRST_BYTES_WITHIN, acceptor.accept(conn))
        .await
        .map_err(|_| within("the TLS handshake took longer than 10 s"))?
}

/// An IPv4 peer seen through an IPv6 socket counts as itself.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An accepted connection: counted against its address until it closes,
/// and closed if it sends nothing within [`FIRST_BYTES_WITHIN`].
pub struct Counted {
    tcp: TcpStream,
    /// Until the first bytes arrive.
    first_bytes: Option<Pin<Box<Sleep>>>,
    release: Option<(Counts, IpAddr)>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some((counts, ip)) = self.release.take() {
            let mut counts = counts.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = counts.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.remove(&ip);
                }
            }
        }
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            if buf.filled().len() > before {
                self.first_bytes = None;
            }
            return r;
        }
        if let Some(deadline) = self.first_bytes.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "nothing sent within 10 s of connecting",
                )));
            }
        }
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}
