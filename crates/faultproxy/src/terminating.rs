//! The two TLS ends of a terminating proxy: a front that accepts TLS with
//! the host's key and hands the plain bytes to the fault core, and a back
//! that takes the core's plain bytes to the host over TLS again.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use super::lock;

pub(super) struct Ends {
    pub(super) front: Front,
    pub(super) back: Back,
}

pub(super) struct Front {
    pub(super) addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts TLS with `identity` and relays the plain bytes to `core`. When
/// the core resets its side, the client's side is reset too.
pub(super) async fn front(
    identity: &pitboss_tls::Identity,
    core: SocketAddr,
) -> std::io::Result<Front> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let acceptor = tokio_rustls::TlsAcceptor::from(identity.server_config());
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                r = listener.accept() => {
                    let Ok((tcp, _)) = r else { continue };
                    let _ = tcp.set_nodelay(true);
                    let acceptor = acceptor.clone();
                    conns.spawn(async move {
                        let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                        let Ok(mut plain) = TcpStream::connect(core).await else {
                            super::rst(tls.get_ref().0);
                            return;
                        };
                        let _ = plain.set_nodelay(true);
                        if tokio::io::copy_bidirectional(&mut tls, &mut plain).await.is_err() {
                            super::rst(tls.get_ref().0);
                        }
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    });
    Ok(Front { addr, task })
}

pub(super) struct Back {
    upstream: Arc<Mutex<SocketAddr>>,
    task: JoinHandle<()>,
}

impl Drop for Back {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Back {
    /// Listens for the core's plain bytes and takes each connection to
    /// the host over TLS, trusting `pin`.
    pub(super) async fn start(
        upstream: SocketAddr,
        pin: pitboss_tls::Pin,
    ) -> std::io::Result<(Back, SocketAddr)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let target = Arc::new(Mutex::new(upstream));
        let t = target.clone();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    r = listener.accept() => {
                        let Ok((mut plain, _)) = r else { continue };
                        let _ = plain.set_nodelay(true);
                        let (pin, to) = (pin.clone(), *lock(&t));
                        conns.spawn(async move {
                            let Ok(mut tls) = pin.connect(&to.ip().to_string(), to.port()).await else {
                                super::rst(&plain);
                                return;
                            };
                            if tokio::io::copy_bidirectional(&mut plain, &mut tls).await.is_err() {
                                super::rst(&plain);
                            }
                        });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        Ok((
            Back {
                upstream: target,
                task,
            },
            addr,
        ))
    }

    pub(super) fn set_upstream(&self, to: SocketAddr) {
        *lock(&self.upstream) = to;
    }
}
