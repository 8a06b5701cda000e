//! A small TCP proxy for putting a venue's network between a client and the
//! server: it forwards bytes both ways and can stall every connection open
//! at that moment (bytes held, nothing closed: a half-open socket after an
//! access-point hand-off). New connections pass normally.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub addr: SocketAddr,
    /// Each connection gets the generation current when it opened; bumping
    /// `stall_upto` past it stalls that connection for good.
    stall_upto: Arc<watch::Sender<u64>>,
    generation: Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, _) = watch::channel(0u64);
        let stall_upto = Arc::new(tx);
        let generation = Arc::new(std::sync::atomic::AtomicU64::new(1));
        let (st, gen) = (stall_upto.clone(), generation.clone());
        let task = tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let my_gen = gen.load(std::sync::atomic::Ordering::SeqCst);
                let stalled = st.subscribe();
                tokio::spawn(async move {
                    let Ok(up) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (dr, dw) = down.into_split();
                    let (ur, uw) = up.into_split();
                    let a = tokio::spawn(pipe(dr, uw, stalled.clone(), my_gen));
                    let b = tokio::spawn(pipe(ur, dw, stalled, my_gen));
                    drop(tokio::join!(a, b));
                });
            }
        });
        Ok(Proxy {
            addr,
            stall_upto,
            generation,
            task,
        })
    }

    /// Stalls every connection open now; later ones pass.
    pub fn stall_current(&self) {
        let g = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.stall_upto.send_replace(g);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut stalled: watch::Receiver<u64>,
    my_gen: u64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if *stalled.borrow_and_update() >= my_gen {
            // Hold everything, close nothing.
            std::future::pending::<()>().await;
        }
        tokio::select! {
            n = from.read(&mut buf) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if *stalled.borrow() >= my_gen {
                        std::future::pending::<()>().await;
                    }
                    if to.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            },
            _ = stalled.changed() => {}
        }
    }
}
