//! A TCP proxy that tests put between Pitboss clients and the server to play
//! the network a venue actually has, and change it while the test runs.
//!
//! Localhost answers in microseconds and never drops a socket, which hides
//! every bug issue 4 is about. `tc netem` is not available on our machines
//! (no `sch_netem`, no root in CI containers on some hosts), so the faults live
//! here, in user space, per connection:
//!
//! - latency with jitter, per direction, **without reordering** (TCP never
//!   reorders bytes; a jittered delivery time is clamped to the previous one);
//! - a bandwidth cap per direction;
//! - stall: bytes are held and nothing is closed, the half-open socket an
//!   access-point hand-off or a sleeping peer leaves behind;
//! - reset: both sockets are closed with RST (zero linger), as when a NAT
//!   entry or the Wi-Fi association is lost;
//! - refuse / black hole for new connections (host gone; host unplugged);
//! - a one-shot reset when a pattern shows up in the server's bytes, which
//!   loses an acknowledgement after the server committed it;
//! - blocking WebSocket upgrades with `403`, as hotel and venue proxies do,
//!   while plain HTTP passes;
//! - healing, and counters a test can print.
//!
//! Pitboss speaks TLS, so the proxy sees encrypted bytes, as the venue's
//! network does: latency, stalls and resets need nothing more. Blocking
//! upgrades needs the HTTP inside: [`Proxy::start_terminating`] plays a
//! reverse proxy that the venue's IT put in front of the host with the
//! host's key (the classic cause of a blocked WebSocket is such a proxy
//! that does not pass `Upgrade`).
//!
//! Faults apply to connections already open as well as to new ones, except
//! `refuse_new` and `blackhole_new`, which by their nature only meet new ones.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// One direction of the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

/// What one direction of the path does to bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Link {
    /// Added to every chunk.
    pub latency: Duration,
    /// A uniformly random extra delay in `0..=jitter`, clamped so bytes never
    /// overtake earlier bytes.
    pub jitter: Duration,
    /// `None` for unlimited.
    pub bytes_per_sec: Option<u64>,
}

impl Link {
    /// Latency with jitter and no bandwidth cap: the usual Wi-Fi profile.
    pub fn wifi(latency_ms: u64, jitter_ms: u64) -> Link {
        Link {
            latency: Duration::from_millis(latency_ms),
            jitter: Duration::from_millis(jitter_ms),
            bytes_per_sec: None,
        }
    }
}

/// How new connections are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Admit {
    Pass,
    /// Accepted, then reset at once: "connection reset" / host down.
    Refuse,
    /// Accepted and held, nothing forwarded, nothing answered: a host that
    /// was unplugged, seen through a switch that still answers the SYN.
    Blackhole,
}

/// Counters since the proxy started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub accepted: u64,
    pub open: u64,
    pub resets: u64,
    pub refused: u64,
    pub upgrades_blocked: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Ctl {
    stalled: bool,
    reset: bool,
}

struct Shared {
    upstream: Mutex<SocketAddr>,
    up: Mutex<Link>,
    down: Mutex<Link>,
    admit: Mutex<Admit>,
    block_upgrades: AtomicBool,
    /// One-shot: the next server→client chunk containing these bytes resets
    /// its connection instead of being delivered.
    reset_on_down: Mutex<Option<Vec<u8>>>,
    conns: Mutex<HashMap<u64, watch::Sender<Ctl>>>,
    next_id: AtomicU64,
    accepted: AtomicU64,
    resets: AtomicU64,
    refused: AtomicU64,
    upgrades_blocked: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

/// Locks ignoring poison: a panicking test task must not take the proxy down
/// with it, and every value behind these locks is valid at any point.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn link(&self, dir: Dir) -> Link {
        match dir {
            Dir::Up => *lock(&self.up),
            Dir::Down => *lock(&self.down),
        }
    }

    fn set_ctl(&self, id: u64, f: impl Fn(&mut Ctl)) {
        if let Some(tx) = lock(&self.conns).get(&id) {
            tx.send_modify(|c| f(c));
        }
    }
}

/// A running proxy. Dropping it stops accepting and closes every connection.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
    /// With TLS termination: the TLS front and the relay back to the
    /// server; the fault core runs on the plain bytes between them.
    tls: Option<terminating::Ends>,
}

mod terminating;

impl Proxy {
    /// Listens on an ephemeral loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        Proxy::start_on("127.0.0.1:0".parse().expect("literal address"), upstream).await
    }

    /// Listens on `listen` (a fixed port lets a test restart the proxy and
    /// keep the address clients were given).
    pub async fn start_on(listen: SocketAddr, upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream),
            up: Mutex::new(Link::default()),
            down: Mutex::new(Link::default()),
            admit: Mutex::new(Admit::Pass),
            block_upgrades: AtomicBool::new(false),
            reset_on_down: Mutex::new(None),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            accepted: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            upgrades_blocked: AtomicU64::new(0),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
        });
        let sh = shared.clone();
        let accept = tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    r = listener.accept() => {
                        let Ok((down, _)) = r else { continue };
                        let _ = down.set_nodelay(true);
                        sh.accepted.fetch_add(1, Ordering::Relaxed);
                        let id = sh.next_id.fetch_add(1, Ordering::Relaxed);
                        let (tx, rx) = watch::channel(Ctl::default());
                        lock(&sh.conns).insert(id, tx);
                        let sh2 = sh.clone();
                        tasks.spawn(async move {
                            serve(down, sh2.clone(), id, rx).await;
                            lock(&sh2.conns).remove(&id);
                        });
                    }
                    // Reap finished connections so the set does not grow.
                    Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                }
            }
            // Dropping the JoinSet (when this task is aborted) aborts every
            // connection task, which drops and closes their sockets.
        });
        Ok(Proxy {
            addr,
            shared,
            accept,
            tls: None,
        })
    }

    /// A proxy that terminates TLS with the host's key (`identity`), applies
    /// its faults to the HTTP inside, and reaches the host over TLS again,
    /// trusting `upstream_pin`. Clients' pins hold: it presents the host's
    /// own key.
    pub async fn start_terminating(
        upstream: SocketAddr,
        identity: &pitboss_tls::Identity,
        upstream_pin: pitboss_tls::Pin,
    ) -> std::io::Result<Proxy> {
        let (back, back_addr) = terminating::Back::start(upstream, upstream_pin).await?;
        let mut core = Proxy::start(back_addr).await?;
        let front = terminating::front(identity, core.addr).await?;
        core.tls = Some(terminating::Ends { front, back });
        Ok(core)
    }

    /// Where clients should connect.
    pub fn addr(&self) -> SocketAddr {
        self.tls.as_ref().map_or(self.addr, |t| t.front.addr)
    }

    /// `https://ADDR` for clients that take a base URL.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr())
    }

    /// Points new connections at another server (a restarted host on a new
    /// port). Open connections keep their upstream.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        match &self.tls {
            Some(t) => t.back.set_upstream(upstream),
            None => *lock(&self.shared.upstream) = upstream,
        }
    }

    /// Sets one direction's latency, jitter and bandwidth; applies to bytes
    /// read from now on, on open and new connections.
    pub fn set_link(&self, dir: Dir, link: Link) {
        match dir {
            Dir::Up => *lock(&self.shared.up) = link,
            Dir::Down => *lock(&self.shared.down) = link,
        }
    }

    /// The same link both ways.
    pub fn set_links(&self, link: Link) {
        self.set_link(Dir::Up, link);
        self.set_link(Dir::Down, link);
    }

    /// Ids of the connections open now.
    pub fn connections(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = lock(&self.shared.conns).keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Holds one connection's bytes in both directions without closing it.
    pub fn stall(&self, id: u64) {
        self.shared.set_ctl(id, |c| c.stalled = true);
    }

    /// Stalls every connection open now; new ones pass.
    pub fn stall_current(&self) {
        for id in self.connections() {
            self.stall(id);
        }
    }

    /// Closes one connection with RST on both sides.
    pub fn reset(&self, id: u64) {
        self.shared.set_ctl(id, |c| c.reset = true);
    }

    /// Resets every connection open now.
    pub fn reset_current(&self) {
        for id in self.connections() {
            self.reset(id);
        }
    }

    /// New connections are reset as soon as they are accepted (the host is
    /// down). Open ones are untouched; combine with `reset_current`.
    pub fn refuse_new(&self) {
        *lock(&self.shared.admit) = Admit::Refuse;
    }

    /// New connections are accepted and then nothing: no bytes forwarded,
    /// no answer, no close (the host was unplugged).
    pub fn blackhole_new(&self) {
        *lock(&self.shared.admit) = Admit::Blackhole;
    }

    /// The host is gone: new connections are held unanswered and the open
    /// ones stall.
    pub fn blackhole(&self) {
        self.blackhole_new();
        self.stall_current();
    }

    /// WebSocket upgrade requests are answered `403 Forbidden` by the proxy;
    /// other HTTP passes. Checked on the first request of each connection,
    /// which is where every WebSocket client sends its upgrade.
    pub fn block_websocket_upgrades(&self, on: bool) {
        self.shared.block_upgrades.store(on, Ordering::SeqCst);
    }

    /// The next chunk from the server containing `pattern` is not delivered;
    /// its connection is reset instead. Fires once.
    pub fn reset_when_downstream_contains(&self, pattern: &[u8]) {
        *lock(&self.shared.reset_on_down) = Some(pattern.to_vec());
    }

    /// Whether the one-shot reset armed with `reset_when_downstream_contains`
    /// is still waiting.
    pub fn reset_trigger_armed(&self) -> bool {
        lock(&self.shared.reset_on_down).is_some()
    }

    /// Ends every fault except latency and bandwidth (set those with
    /// `set_link`): stalled connections flow again, new connections pass,
    /// upgrades pass, the pending reset trigger is dropped.
    pub fn heal(&self) {
        *lock(&self.shared.admit) = Admit::Pass;
        self.block_websocket_upgrades(false);
        *lock(&self.shared.reset_on_down) = None;
        for tx in lock(&self.shared.conns).values() {
            tx.send_modify(|c| c.stalled = false);
        }
    }

    pub fn stats(&self) -> Stats {
        let s = &self.shared;
        Stats {
            accepted: s.accepted.load(Ordering::Relaxed),
            open: lock(&s.conns).len() as u64,
            resets: s.resets.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            upgrades_blocked: s.upgrades_blocked.load(Ordering::Relaxed),
            bytes_up: s.bytes_up.load(Ordering::Relaxed),
            bytes_down: s.bytes_down.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Closes a socket with RST instead of FIN.
fn rst(s: &TcpStream) {
    let _ = s.set_zero_linger();
}

/// Resets through the write half. Dropping an `OwnedWriteHalf` sends FIN
/// (it shuts down writing), which would turn the reset into a clean close;
/// `forget` leaves the socket to be closed, with RST, by the read half.
fn rst_write(to: OwnedWriteHalf) {
    rst(to.as_ref());
    to.forget();
}

async fn wait_reset(ctl: &mut watch::Receiver<Ctl>) {
    let _ = ctl.wait_for(|c| c.reset).await;
}

async fn serve(down: TcpStream, sh: Arc<Shared>, id: u64, mut ctl: watch::Receiver<Ctl>) {
    let admit = *lock(&sh.admit);
    match admit {
        Admit::Refuse => {
            sh.refused.fetch_add(1, Ordering::Relaxed);
            rst(&down);
            return;
        }
        Admit::Blackhole => {
            // Hold the socket, read nothing, answer nothing; only an explicit
            // reset (or the proxy going away) ends it.
            wait_reset(&mut ctl).await;
            sh.resets.fetch_add(1, Ordering::Relaxed);
            rst(&down);
            return;
        }
        Admit::Pass => {}
    }

    let mut down = down;
    let mut head = Vec::new();
    if sh.block_upgrades.load(Ordering::SeqCst) {
        match read_head(&mut down).await {
            Some(h) if is_websocket_upgrade(&h) => {
                sh.upgrades_blocked.fetch_add(1, Ordering::Relaxed);
                let body = "WebSocket upgrades are blocked on this network\n";
                let answer = format!(
                    "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = down.write_all(answer.as_bytes()).await;
                let _ = down.shutdown().await;
                return;
            }
            Some(h) => head = h,
            None => return,
        }
    }

    let upstream = *lock(&sh.upstream);
    let up = tokio::select! {
        r = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(upstream)) => r,
        _ = wait_reset(&mut ctl) => { rst(&down); return; }
    };
    let up = match up {
        Ok(Ok(s)) => s,
        _ => {
            // Upstream down: the client sees its connection reset.
            sh.refused.fetch_add(1, Ordering::Relaxed);
            rst(&down);
            return;
        }
    };
    let _ = up.set_nodelay(true);

    let (dr, dw) = down.into_split();
    let (ur, uw) = up.into_split();
    let (qu_tx, qu_rx) = mpsc::unbounded_channel();
    let (qd_tx, qd_rx) = mpsc::unbounded_channel();
    if !head.is_empty() {
        sh.bytes_up.fetch_add(head.len() as u64, Ordering::Relaxed);
        let at = Instant::now() + delay(&sh.link(Dir::Up));
        let _ = qu_tx.send(Item::Data(at, head));
    }
    let tasks = [
        tokio::spawn(reader(dr, qu_tx, sh.clone(), ctl.clone(), Dir::Up, id)),
        tokio::spawn(writer(uw, qu_rx, sh.clone(), ctl.clone(), Dir::Up, id)),
        tokio::spawn(reader(ur, qd_tx, sh.clone(), ctl.clone(), Dir::Down, id)),
        tokio::spawn(writer(dw, qd_rx, sh.clone(), ctl.clone(), Dir::Down, id)),
    ];
    // Every task ends on its own (EOF delivered, or a reset). Aborting this
    // future (proxy dropped) must end them too, so they are aborted on drop.
    struct AbortAll([tokio::task::JoinHandle<Outcome>; 4]);
    impl Drop for AbortAll {
        fn drop(&mut self) {
            for t in &self.0 {
                t.abort();
            }
        }
    }
    let mut all = AbortAll(tasks);
    let mut errored = false;
    for t in all.0.iter_mut() {
        if let Ok(Outcome::Failed) = t.await {
            errored = true;
        }
    }
    if errored || ctl.borrow().reset {
        sh.resets.fetch_add(1, Ordering::Relaxed);
    }
}

enum Item {
    Data(Instant, Vec<u8>),
    Eof,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    Failed,
}

fn delay(link: &Link) -> Duration {
    let mut d = link.latency;
    if !link.jitter.is_zero() {
        let j = rand::rng().random_range(0..=link.jitter.as_micros() as u64);
        d += Duration::from_micros(j);
    }
    d
}

/// Signals every task of this connection to reset. Any side failing (the
/// client reset us, the server went away) is passed on as a reset to the
/// other side, as a router would.
fn fail(sh: &Shared, id: u64) {
    sh.set_ctl(id, |c| c.reset = true);
}

async fn reader(
    mut from: OwnedReadHalf,
    q: mpsc::UnboundedSender<Item>,
    sh: Arc<Shared>,
    mut ctl: watch::Receiver<Ctl>,
    dir: Dir,
    id: u64,
) -> Outcome {
    let mut buf = vec![0u8; 16 * 1024];
    let mut last_at = Instant::now();
    // The end of the previous chunk, so a pattern split across two reads
    // is still seen.
    let mut tail: Vec<u8> = Vec::new();
    loop {
        // While stalled, stop reading too, so the sender's TCP window fills
        // as it would on a path that stopped acknowledging.
        let c = *ctl.borrow_and_update();
        if c.reset {
            rst(from.as_ref());
            return Outcome::Done;
        }
        if c.stalled {
            if ctl.changed().await.is_err() {
                return Outcome::Done;
            }
            continue;
        }
        let n = tokio::select! {
            r = from.read(&mut buf) => r,
            _ = ctl.changed() => continue,
        };
        match n {
            Ok(0) => {
                let _ = q.send(Item::Eof);
                return Outcome::Done;
            }
            Err(_) => {
                fail(&sh, id);
                rst(from.as_ref());
                return Outcome::Failed;
            }
            Ok(n) => {
                let chunk = buf[..n].to_vec();
                if dir == Dir::Down && triggered(&sh, &tail, &chunk) {
                    fail(&sh, id);
                    rst(from.as_ref());
                    return Outcome::Failed;
                }
                if dir == Dir::Down {
                    let keep = chunk.len().min(256);
                    tail = chunk[chunk.len() - keep..].to_vec();
                }
                let counter = match dir {
                    Dir::Up => &sh.bytes_up,
                    Dir::Down => &sh.bytes_down,
                };
                counter.fetch_add(n as u64, Ordering::Relaxed);
                let at = (Instant::now() + delay(&sh.link(dir))).max(last_at);
                last_at = at;
                if q.send(Item::Data(at, chunk)).is_err() {
                    return Outcome::Done;
                }
            }
        }
    }
}

/// Whether this chunk (with the end of the previous one) holds the armed
/// pattern; disarms it when it does.
fn triggered(sh: &Shared, tail: &[u8], chunk: &[u8]) -> bool {
    let mut armed = lock(&sh.reset_on_down);
    let Some(pat) = armed.as_ref() else {
        return false;
    };
    let mut hay = Vec::with_capacity(tail.len() + chunk.len());
    hay.extend_from_slice(tail);
    hay.extend_from_slice(chunk);
    let hit = !pat.is_empty() && hay.windows(pat.len()).any(|w| w == pat.as_slice());
    if hit {
        *armed = None;
    }
    hit
}

async fn writer(
    mut to: OwnedWriteHalf,
    mut q: mpsc::UnboundedReceiver<Item>,
    sh: Arc<Shared>,
    mut ctl: watch::Receiver<Ctl>,
    dir: Dir,
    id: u64,
) -> Outcome {
    let mut next_free = Instant::now();
    loop {
        let item = tokio::select! {
            i = q.recv() => i,
            _ = wait_reset(&mut ctl) => None,
        };
        if ctl.borrow().reset {
            rst_write(to);
            return Outcome::Done;
        }
        let Some(item) = item else {
            return Outcome::Done;
        };
        match item {
            Item::Eof => {
                let _ = to.shutdown().await;
                return Outcome::Done;
            }
            Item::Data(at, bytes) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = wait_reset(&mut ctl) => { rst_write(to); return Outcome::Done; }
                }
                let step = match sh.link(dir).bytes_per_sec {
                    Some(_) => 1024,
                    None => bytes.len().max(1),
                };
                for piece in bytes.chunks(step) {
                    // Held while stalled; released by heal, ended by reset.
                    let c = match ctl.wait_for(|c| !c.stalled || c.reset).await {
                        Ok(c) => *c,
                        Err(_) => return Outcome::Done,
                    };
                    if c.reset {
                        rst_write(to);
                        return Outcome::Done;
                    }
                    if let Some(bps) = sh.link(dir).bytes_per_sec {
                        let now = Instant::now();
                        if next_free < now {
                            next_free = now;
                        }
                        tokio::time::sleep_until(next_free).await;
                        next_free +=
                            Duration::from_nanos(piece.len() as u64 * 1_000_000_000 / bps.max(1));
                    }
                    let w = tokio::select! {
                        r = to.write_all(piece) => r,
                        _ = wait_reset(&mut ctl) => { rst_write(to); return Outcome::Done; }
                    };
                    if w.is_err() {
                        fail(&sh, id);
                        rst_write(to);
                        return Outcome::Failed;
                    }
                }
            }
        }
    }
}

/// Reads the first HTTP request head (up to the blank line, at most 16 KiB,
/// at most 10 s). `None` when the client went away or sent no head.
async fn read_head(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return if head.is_empty() { None } else { Some(head) },
        }
    }
    Some(head)
}

fn is_websocket_upgrade(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    text.lines().any(|l| {
        let l = l.trim();
        l.starts_with("upgrade:") && l.contains("websocket")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_heads_are_recognised() {
        assert!(is_websocket_upgrade(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        ));
        assert!(is_websocket_upgrade(
            b"GET /ws HTTP/1.1\r\nupgrade:  WebSocket\r\n\r\n"
        ));
        assert!(!is_websocket_upgrade(
            b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"
        ));
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let l = Link::wifi(50, 50);
        for _ in 0..1000 {
            let d = delay(&l);
            assert!(d >= Duration::from_millis(50) && d <= Duration::from_millis(100));
        }
    }
}
