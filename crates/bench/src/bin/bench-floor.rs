//! `bench-floor`: the floor the fan-out benchmark measures Pitboss against.
//!
//! A bare WebSocket broadcast server on Pitboss's own stack (tokio and
//! tungstenite, 1 KiB read buffer like the real server): every text frame a
//! connection sends goes to every other connection. No storage, no
//! sequence, no authentication, no JSON: whatever Pitboss costs above this
//! is the price of its architecture. Each connection's writer drains what is
//! queued and flushes once, as the real server does, so the comparison is
//! about the architecture, not about one flush per message.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

#[derive(Parser)]
#[command(about = "A bare WebSocket broadcast server: the benchmark's floor")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:7900")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!("listening on {}", listener.local_addr()?);
    // (sender id, frame); lagging receivers skip ahead, as a broadcast must.
    let (tx, _) = broadcast::channel::<(u64, Utf8Bytes)>(4096);
    let tx = Arc::new(tx);
    let mut next = 0u64;
    loop {
        let (sock, _) = listener.accept().await?;
        next += 1;
        let id = next;
        let tx = tx.clone();
        tokio::spawn(async move {
            drop(sock.set_nodelay(true));
            let cfg = WebSocketConfig::default()
                .read_buffer_size(1024)
                .write_buffer_size(0);
            let Ok(ws) = tokio_tungstenite::accept_async_with_config(sock, Some(cfg)).await else {
                return;
            };
            let (mut sink, mut stream) = ws.split();
            let mut rx = tx.subscribe();
            let writer = tokio::spawn(async move {
                loop {
                    let Ok((from, first)) = rx.recv().await.or_else(|e| match e {
                        broadcast::error::RecvError::Lagged(_) => {
                            Ok((0, Utf8Bytes::from_static("")))
                        }
                        broadcast::error::RecvError::Closed => Err(()),
                    }) else {
                        break;
                    };
                    let mut ok = true;
                    if from != id && !first.is_empty() {
                        ok = sink.feed(Message::Text(first)).await.is_ok();
                    }
                    // Drain what is already queued, then flush once.
                    while ok {
                        match rx.try_recv() {
                            Ok((from, f)) => {
                                if from != id {
                                    ok = sink.feed(Message::Text(f)).await.is_ok();
                                }
                            }
                            Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                            Err(_) => break,
                        }
                    }
                    if !ok || sink.flush().await.is_err() {
                        break;
                    }
                }
            });
            while let Some(Ok(m)) = stream.next().await {
                if let Message::Text(t) = m {
                    drop(tx.send((id, t)));
                }
            }
            writer.abort();
        });
    }
}
