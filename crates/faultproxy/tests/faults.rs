//! The proxy does what tests rely on it to do, measured against a plain echo
//! server over real loopback sockets.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pitboss_faultproxy::{Dir, Link, Proxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Echoes every byte back until the peer closes.
async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Duration {
    let t = Instant::now();
    s.write_all(msg).await.expect("write");
    let mut got = vec![0u8; msg.len()];
    s.read_exact(&mut got).await.expect("read");
    assert_eq!(got, msg);
    t.elapsed()
}

#[tokio::test]
async fn latency_applies_per_direction_and_jitter_never_reorders() {
    let p = Proxy::start(echo_server().await).await.expect("proxy");
    let mut s = TcpStream::connect(p.addr()).await.expect("connect");
    let plain = round_trip(&mut s, b"x").await;
    assert!(plain < Duration::from_millis(40), "no fault: {plain:?}");

    p.set_link(Dir::Up, Link::wifi(60, 0));
    p.set_link(Dir::Down, Link::wifi(40, 0));
    let rtt = round_trip(&mut s, b"y").await;
    assert!(
        rtt >= Duration::from_millis(100) && rtt < Duration::from_millis(300),
        "60 ms up + 40 ms down: {rtt:?}"
    );

    // 200 numbered writes with 0..80 ms jitter come back in order.
    p.set_links(Link::wifi(5, 80));
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        for i in 0..200u32 {
            w.write_all(&i.to_be_bytes()).await.expect("write");
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        w
    });
    for i in 0..200u32 {
        let mut b = [0u8; 4];
        r.read_exact(&mut b).await.expect("read");
        assert_eq!(u32::from_be_bytes(b), i, "bytes overtook each other");
    }
    drop(writer.await);
}

#[tokio::test]
async fn bandwidth_cap_paces_the_bytes() {
    let p = Proxy::start(echo_server().await).await.expect("proxy");
    p.set_link(
        Dir::Down,
        Link {
            bytes_per_sec: Some(64 * 1024),
            ..Link::default()
        },
    );
    let mut s = TcpStream::connect(p.addr()).await.expect("connect");
    let msg = vec![7u8; 32 * 1024];
    let took = round_trip(&mut s, &msg).await;
    // 32 KiB at 64 KiB/s is half a second.
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(1500),
        "{took:?}"
    );
}

#[tokio::test]
async fn stall_holds_bytes_without_closing_and_heal_releases_them() {
    let p = Proxy::start(echo_server().await).await.expect("proxy");
    let mut s = TcpStream::connect(p.addr()).await.expect("connect");
    round_trip(&mut s, b"a").await;
    p.stall_current();
    s.write_all(b"held")
        .await
        .expect("write into a stalled path");
    let mut buf = [0u8; 4];
    let r = tokio::time::timeout(Duration::from_millis(500), s.read_exact(&mut buf)).await;
    assert!(r.is_err(), "a stalled path delivered bytes or closed");

    // New connections are not stalled.
    let mut s2 = TcpStream::connect(p.addr()).await.expect("connect");
    round_trip(&mut s2, b"fresh").await;

    p.heal();
    tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf))
        .await
        .expect("released after heal")
        .expect("read");
    assert_eq!(&buf, b"held");
}

#[tokio::test]
async fn reset_closes_with_rst() {
    let p = Proxy::start(echo_server().await).await.expect("proxy");
    let mut s = TcpStream::connect(p.addr()).await.expect("connect");
    round_trip(&mut s, b"a").await;
    p.reset_current();
    let mut buf = [0u8; 1];
    let r = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .expect("the reset arrives");
    let e = r.expect_err("a reset is an error, not a clean end of stream");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(p.stats().resets >= 1);
}

#[tokio::test]
async fn refused_and_blackholed_connections() {
    let p = Proxy::start(echo_server().await).await.expect("proxy");
    p.refuse_new();
    let mut s = TcpStream::connect(p.addr()).await.expect("tcp accept");
    let mut buf = [0u8; 1];
    let r = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .expect("refused at once");
    assert!(r.is_err() || r.ok() == Some(0));

    p.blackhole_new();
    let mut s = TcpStream::connect(p.addr()).await.expect("tcp accept");
    s.write_all(b"hello?").await.expect("write");
    let r = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await;
    assert!(r.is_err(), "a black hole answered: {r:?}");

    p.heal();
    let mut s = TcpStream::connect(p.addr()).await.expect("connect");
    round_trip(&mut s, b"back").await;
}

#[tokio::test]
async fn reset_on_pattern_fires_once_before_delivery() {
    let p = Proxy::start(echo_server().await).await.expect("proxy");
    p.reset_when_downstream_contains(b"\"type\":\"ack\"");
    let mut s = TcpStream::connect(p.addr()).await.expect("connect");
    round_trip(&mut s, b"{\"type\":\"change\"}").await;
    s.write_all(b"{\"type\":\"ack\"}").await.expect("write");
    let mut buf = [0u8; 64];
    let r = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .expect("reset arrives");
    assert!(
        matches!(r, Err(_) | Ok(0)),
        "the matching bytes were delivered: {r:?}"
    );
    assert!(!p.reset_trigger_armed());
    let mut s = TcpStream::connect(p.addr()).await.expect("connect");
    round_trip(&mut s, b"{\"type\":\"ack\"}").await;
}

#[tokio::test]
async fn websocket_upgrades_are_blocked_and_plain_http_passes() {
    let p = Proxy::start(echo_server().await).await.expect("proxy");
    p.block_websocket_upgrades(true);
    let mut s = TcpStream::connect(p.addr()).await.expect("connect");
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    )
    .await
    .expect("write");
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert_eq!(p.stats().upgrades_blocked, 1);

    // The echo server stands in for HTTP: the request head arrives intact.
    let mut s = TcpStream::connect(p.addr()).await.expect("connect");
    let req = b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n";
    round_trip(&mut s, req).await;
}
