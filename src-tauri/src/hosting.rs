//! Host mode: the venue server running inside this app, on an address the
//! room's other devices can reach. Once started it runs until the app
//! quits, even while the director looks at another venue: stopping it
//! would cut every other screen in the room.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::CmdError;
use crate::ipc::HostInfo;

/// The in-process server and the addresses it was announced on.
pub struct Hosting {
    server: Arc<pitboss_server::Server>,
    /// Listed each time this device (re)hosts, not at every look: a
    /// laptop that moved to the venue's Wi-Fi announces its new address.
    addresses: Vec<String>,
}

impl Hosting {
    /// Starts the server with its store in `dir`, on the first address of
    /// [`listen_addrs`] that is free. The demo event is made on first run so
    /// a new host sees a clock at once.
    pub async fn start(dir: PathBuf) -> Result<Hosting, CmdError> {
        let mut last = None;
        for addr in listen_addrs() {
            let mut config = pitboss_server::Config::new(addr, dir.clone());
            config.demo = true;
            match pitboss_server::start(config).await {
                Ok(server) => {
                    let mut hosting = Hosting {
                        server: Arc::new(server),
                        addresses: vec![],
                    };
                    hosting.list_addresses();
                    return Ok(hosting);
                }
                Err(e) => {
                    tracing::warn!("cannot host on {addr}: {e:#}");
                    last = Some(e);
                }
            }
        }
        Err(CmdError::new(
            "internal",
            match last {
                Some(e) => format!("cannot start the venue server: {e:#}"),
                None => "cannot start the venue server: no address to listen on".into(),
            },
        ))
    }

    /// Lists the addresses to announce again.
    pub fn list_addresses(&mut self) {
        let bound = self.server.local_addr();
        self.addresses = lan_addresses(bound);
        tracing::info!(address = %bound, "hosting the venue");
    }

    /// What the host's header shows, with the join codes as they are now: a
    /// revoke replaces the code the revoked device joined with.
    pub fn info(&self) -> HostInfo {
        let codes = self.server.join_codes();
        HostInfo {
            port: self.server.local_addr().port(),
            addresses: self.addresses.clone(),
            coordinator_code: codes.coordinator,
            dealer_code: codes.dealer,
            display_code: Some(codes.display),
            key_fingerprint: self.server.fingerprint().short(),
        }
    }

    /// The server's TLS key, which this app pins to reach it.
    pub fn fingerprint(&self) -> pitboss_tls::Fingerprint {
        self.server.fingerprint()
    }

    /// The URL this app itself uses to reach its server: loopback when the
    /// server listens on every interface.
    pub fn local_url(&self) -> String {
        let bound = self.server.local_addr();
        let local = if bound.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], bound.port()))
        } else {
            bound
        };
        format!("https://{local}")
    }

    /// The long coordinator code, with which the host joins its own venue.
    pub fn coordinator_code(&self) -> String {
        self.server.join_codes().coordinator
    }

    pub fn demo_event_id(&self) -> Option<&str> {
        self.server.demo_event_id()
    }
}

/// Where to host: `PITBOSS_LISTEN`, else port 7878 on every interface so
/// the venue's devices can reach it, else any free port.
fn listen_addrs() -> Vec<SocketAddr> {
    if let Some(a) = std::env::var("PITBOSS_LISTEN")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return vec![a];
    }
    vec![
        SocketAddr::from(([0, 0, 0, 0], 7878)),
        SocketAddr::from(([0, 0, 0, 0], 0)),
    ]
}

/// The addresses other devices can type to join: this machine's IPv4 LAN
/// addresses first, loopback last (for a second window on this machine).
fn lan_addresses(bound: SocketAddr) -> Vec<String> {
    if !bound.ip().is_unspecified() {
        return vec![bound.to_string()];
    }
    let mut out: Vec<String> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback() && i.ip().is_ipv4())
        .map(|i| format!("{}:{}", i.ip(), bound.port()))
        .collect();
    out.sort();
    out.dedup();
    out.push(format!("127.0.0.1:{}", bound.port()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_address_is_announced_as_it_is_and_any_address_ends_with_loopback() {
        let fixed = SocketAddr::from(([192, 168, 1, 20], 7878));
        assert_eq!(lan_addresses(fixed), vec!["192.168.1.20:7878".to_string()]);
        let any = lan_addresses(SocketAddr::from(([0, 0, 0, 0], 7878)));
        assert_eq!(any.last().map(String::as_str), Some("127.0.0.1:7878"));
        assert!(any.iter().all(|a| a.ends_with(":7878")), "{any:?}");
    }
}
