//! The pinned channel, from the device's side, against real servers over
//! real sockets: what crosses the venue's Wi-Fi holds no code, token or op
//! in clear, and something else answering at the host's address (a laptop
//! on the players' Wi-Fi that took the host's IP, with the join codes it
//! overheard) gets no secret: the client refuses its key in the handshake,
//! says so, and goes back to the real host when it returns.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use common::{accepted, server, server_with, wait_seq, COORD, DEALER};
use pitboss_client::{Client, Status, Venue, VenueConfig, VenueError};
use pitboss_core::Op;

fn venue(base: &str, code: &str, name: &str, cache: &Path) -> Result<Venue> {
    Venue::new(VenueConfig {
        server: base.to_string(),
        pin: None,
        join_code: code.to_string(),
        name: name.into(),
        device: format!("{name}-laptop"),
        cache_path: cache.to_path_buf(),
    })
}

/// A TCP relay to `upstream` that keeps every byte it carries, both ways:
/// what someone on the venue's Wi-Fi would capture.
async fn recording_relay(upstream: SocketAddr) -> Result<(SocketAddr, Arc<Mutex<Vec<u8>>>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let all = seen.clone();
    tokio::spawn(async move {
        while let Ok((down, _)) = listener.accept().await {
            let all = all.clone();
            tokio::spawn(async move {
                let Ok(up) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut dr, mut dw) = down.into_split();
                let (mut ur, mut uw) = up.into_split();
                let a = all.clone();
                let upward = tokio::spawn(async move { copy_keeping(&mut dr, &mut uw, &a).await });
                copy_keeping(&mut ur, &mut dw, &all).await;
                upward.abort();
            });
        }
    });
    Ok((addr, seen))
}

async fn copy_keeping(
    from: &mut (impl tokio::io::AsyncRead + Unpin),
    to: &mut (impl tokio::io::AsyncWrite + Unpin),
    seen: &Mutex<Vec<u8>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A man in the middle: it answers TLS with a key of its own (`identity`),
/// reaches the host over TLS with the host's key, and keeps every byte of
/// plain text that passes, both ways.
async fn middleman(
    upstream: SocketAddr,
    identity: &pitboss_tls::Identity,
    host_key: pitboss_tls::Fingerprint,
) -> Result<(SocketAddr, Arc<Mutex<Vec<u8>>>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let acceptor = tokio_rustls::TlsAcceptor::from(identity.server_config());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let all = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, all) = (acceptor.clone(), all.clone());
            tokio::spawn(async move {
                let Ok(down) = acceptor.accept(tcp).await else {
                    return;
                };
                let pin = pitboss_tls::Pin::to(host_key);
                let Ok(up) = pin.connect("127.0.0.1", upstream.port()).await else {
                    return;
                };
                let (mut dr, mut dw) = tokio::io::split(down);
                let (mut ur, mut uw) = tokio::io::split(up);
                let a = all.clone();
                let upward = tokio::spawn(async move { copy_keeping(&mut dr, &mut uw, &a).await });
                copy_keeping(&mut ur, &mut dw, &all).await;
                upward.abort();
            });
        }
    });
    Ok((addr, seen))
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_of_a_whole_session_holds_no_code_token_or_op_in_clear() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = server(&dir.path().join("srv")).await?;
    let event = srv.demo_event_id().context("demo")?.to_string();
    let (relay, seen) = recording_relay(srv.local_addr()).await?;
    let base = format!("https://{relay}");

    // A coordinator makes a pairing code; a dealer joins with it, follows
    // the event over the WebSocket and reports a bust-out; the coordinator
    // lists the join codes, as the host's screen does.
    let coord = venue(&base, COORD, "Ana", &dir.path().join("c.db"))?;
    coord.login().await?;
    let pairing = coord.create_pairing(pitboss_core::Role::Dealer).await?;
    let dan = venue(&base, &pairing.code, "Dan", &dir.path().join("d.db"))?;
    let session = dan.login().await?;
    let mut cfg = common::config(relay, DEALER, &event, &dir.path().join("d.db"));
    cfg.name = "Dan".into();
    let client = Client::start(cfg)?;
    client
        .wait_status(Duration::from_secs(10), |s| *s == Status::Live)
        .await?;
    let seq = accepted(&client, Op::StatsBust { count: 1 }).await?;
    wait_seq(&client, seq, Duration::from_secs(5)).await?;
    client.shutdown().await;

    let bytes = seen.lock().unwrap().clone();
    // It carried the whole event at least once (the snapshot), sealed.
    let state = srv
        .snapshot(&event)
        .await
        .map_err(|e| anyhow::anyhow!(e.body.message))?;
    let state_len = serde_json::to_string(&state.state)?.len();
    ensure!(
        bytes.len() > state_len,
        "the relay carried {} bytes, less than the event's {state_len}",
        bytes.len()
    );
    for secret in [
        COORD,
        DEALER,
        pairing.code.as_str(),
        session.token.as_str(),
        "stats.bust",
        "join_code",
        "authorization",
        "/api/session",
    ] {
        ensure!(
            !holds(&bytes, secret),
            "the capture holds {secret:?} in clear"
        );
    }
    srv.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_at_the_hosts_address_gets_no_secret_and_the_client_says_so() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let real = server(&dir.path().join("srv")).await?;
    let addr = real.local_addr();
    let real_key = real.fingerprint();
    let event = real.demo_event_id().context("demo")?.to_string();
    let base = format!("https://{addr}");
    let cache = dir.path().join("d.db");
    let mut cfg = common::config(addr, DEALER, &event, &cache);
    cfg.name = "Dan".into();
    let dealer = Client::start(cfg)?;
    dealer
        .wait_status(Duration::from_secs(10), |s| *s == Status::Live)
        .await?;

    // The host goes away; a laptop takes its address with its own key and
    // the codes it overheard.
    real.shutdown().await;
    let impostor = server_with(&dir.path().join("impostor"), |c| c.listen = addr).await?;
    ensure!(impostor.fingerprint() != real_key);
    let s = dealer
        .wait_status(Duration::from_secs(10), |s| {
            matches!(s, Status::KeyChanged { .. })
        })
        .await?;
    let Status::KeyChanged {
        pinned, offered, ..
    } = s
    else {
        bail!("{s:?}")
    };
    ensure!(pinned == real_key.short() && offered == impostor.fingerprint().short());
    // Ops made meanwhile wait in the outbox; none reaches the impostor.
    let op_id = dealer.submit(Op::StatsBust { count: 1 }).await?;
    // A person joining again with the stored code is refused too.
    let again = venue(&base, DEALER, "Dan", &cache)?;
    match again.login().await {
        Err(VenueError::KeyChanged { mismatch, .. }) => {
            ensure!(mismatch.offered == impostor.fingerprint())
        }
        other => bail!("a login reached the impostor: {other:?}"),
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(
        matches!(*dealer.status().borrow(), Status::KeyChanged { .. }),
        "the client went on past the impostor: {:?}",
        *dealer.status().borrow()
    );
    // The impostor saw no login from this device, and no op.
    let eve = venue(&base, COORD, "Eve", &dir.path().join("eve.db"))?;
    eve.login().await?;
    let names: Vec<String> = eve.devices().await?.into_iter().map(|d| d.name).collect();
    ensure!(
        names == ["Eve"],
        "the impostor knows other devices: {names:?}"
    );

    // The real host comes back at its address: the client goes live with
    // the key it pinned, and the op made meanwhile is applied there.
    impostor.shutdown().await;
    let back = server_with(&dir.path().join("srv"), |c| c.listen = addr).await?;
    ensure!(
        back.fingerprint() == real_key,
        "a restarted host keeps its key"
    );
    dealer
        .wait_status(Duration::from_secs(15), |s| *s == Status::Live)
        .await?;
    // The op leaves the outbox only when the real host answers it.
    let mut pending = dealer.pending();
    tokio::time::timeout(Duration::from_secs(10), async {
        while pending.borrow_and_update().iter().any(|p| p.op_id == op_id) {
            if pending.changed().await.is_err() {
                break;
            }
        }
    })
    .await
    .context("the op made during the impostor never reached the real host")?;
    dealer.shutdown().await;
    back.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_man_in_the_middle_at_pairing_learns_no_code_gets_no_session_and_spoils_nothing(
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let srv = server(&dir.path().join("srv")).await?;
    let base = format!("https://{}", srv.local_addr());
    let coord = venue(&base, COORD, "Ana", &dir.path().join("c.db"))?;
    coord.login().await?;
    let code = coord.create_pairing(pitboss_core::Role::Dealer).await?.code;

    // Dan's laptop, on the players' Wi-Fi, reaches a middleman that took
    // the host's address and relays to the host.
    let own = pitboss_tls::Identity::generate()?;
    let (mitm, seen) = middleman(srv.local_addr(), &own, srv.fingerprint()).await?;
    let dan_cache = dir.path().join("d.db");
    let dan = venue(&format!("https://{mitm}"), &code, "Dan", &dan_cache)?;
    match dan.login().await {
        Err(VenueError::PairingFailed(_)) => {}
        other => bail!("pairing through a middleman: {other:?}"),
    }
    ensure!(dan.key().is_none(), "the middleman's key was kept");
    let plain = seen.lock().unwrap().clone();
    ensure!(
        holds(&plain, "/api/pairing/exchange") && holds(&plain, "\"proof\""),
        "the middleman relayed the exchange"
    );
    for never in [code.as_str(), "/api/pairing/confirm", "\"token\""] {
        ensure!(!holds(&plain, never), "the middleman saw {never:?}");
    }
    let names: Vec<String> = coord.devices().await?.into_iter().map(|d| d.name).collect();
    ensure!(
        names == ["Ana"],
        "a device joined through the middleman: {names:?}"
    );

    // The code was never seen, so it still pairs Dan once he reaches the
    // real host, and he pins the host's key, not the middleman's.
    let direct = venue(&base, &code, "Dan", &dan_cache)?;
    let s = direct.login().await?;
    ensure!(s.role == "dealer");
    ensure!(direct.key() == Some(srv.fingerprint()));
    srv.shutdown().await;
    Ok(())
}
