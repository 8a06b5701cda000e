//! The device's side: a TLS client that trusts one key, the pinned one,
//! and nothing else: no certificate authority, no hostname, no dates. The
//! handshake signature is still checked with that key, so only a server
//! holding the private key gets through.
//!
//! A device joining with a long code has no pin yet: it pins the key of
//! the first server that answers ([`Pin::first_use`]) and shows its
//! fingerprint for a person to compare with the host's screen. From then
//! on a different key is a [`KeyMismatch`], the connection is dropped in
//! the handshake, before any code or token is sent.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::WebSocketStream;

use crate::{Fingerprint, KeyMismatch};

/// A TLS connection to a pinned server.
pub type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// The name sent in the handshake. Nothing checks it: devices reach the
/// host by a LAN address, and trust its key, not its name.
const SERVER_NAME: &str = "pitboss";

/// Which server key a device trusts. Cheap to clone; clones share what
/// [`Pin::first_use`] learns.
#[derive(Clone, Debug)]
pub struct Pin {
    verifier: Arc<Verifier>,
}

#[derive(Debug)]
struct Verifier {
    /// `None` until a first-use pin has seen a server.
    key: Mutex<Option<Fingerprint>>,
    /// Made with [`Pin::first_use`] (or without a key): what it learnt may
    /// be unlearnt when the exchange that followed did not check out.
    learns: bool,
    provider: Arc<CryptoProvider>,
}

impl Pin {
    /// Trusts this key only.
    pub fn to(key: Fingerprint) -> Pin {
        Pin::with(Some(key))
    }

    /// Trusts the first key it sees, then only that one.
    pub fn first_use() -> Pin {
        Pin::with(None)
    }

    /// [`Pin::to`] the key if there is one, else [`Pin::first_use`].
    pub fn to_or_first_use(key: Option<Fingerprint>) -> Pin {
        Pin::with(key)
    }

    fn with(key: Option<Fingerprint>) -> Pin {
        Pin {
            verifier: Arc::new(Verifier {
                learns: key.is_none(),
                key: Mutex::new(key),
                provider: crate::provider(),
            }),
        }
    }

    /// The pinned key: given, or learnt on first use (`None` before).
    pub fn key(&self) -> Option<Fingerprint> {
        *self.verifier.key.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets a key learnt on first use (a given key stays): the server
    /// that showed it failed to prove it is the host, so the next
    /// connection must not trust it.
    pub fn unlearn(&self) {
        if self.verifier.learns {
            *self.verifier.key.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// The rustls configuration that checks the pin.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut config =
            rustls::ClientConfig::builder_with_provider(self.verifier.provider.clone())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .dangerous()
                .with_custom_certificate_verifier(self.verifier.clone())
                .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// An HTTP client that talks to the pinned server only (`https://`).
    pub fn http_client(&self, builder: reqwest::ClientBuilder) -> reqwest::Result<reqwest::Client> {
        builder
            .use_preconfigured_tls((*self.client_config()).clone())
            .build()
    }

    /// A TLS connection to `host:port` (an IPv6 literal with or without
    /// brackets).
    pub async fn connect(&self, host: &str, port: u16) -> std::io::Result<TlsStream> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let tcp = TcpStream::connect((host, port)).await?;
        self.over(tcp).await
    }

    /// The TLS handshake on a connection already made (from a chosen
    /// source address, say).
    pub async fn over(&self, tcp: TcpStream) -> std::io::Result<TlsStream> {
        // Small frames must not wait for the previous one's ACK.
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from(SERVER_NAME).expect("a valid DNS name");
        tokio_rustls::TlsConnector::from(self.client_config())
            .connect(name, tcp)
            .await
    }

    /// Opens a WebSocket (`wss://host:port/path`) to the pinned server.
    pub async fn websocket<R: IntoClientRequest + Unpin>(
        &self,
        request: R,
        config: Option<WebSocketConfig>,
    ) -> Result<(WebSocketStream<TlsStream>, Response), WsError> {
        let request = request.into_client_request()?;
        let uri = request.uri();
        let host = uri
            .host()
            .ok_or(WsError::Url(
                tokio_tungstenite::tungstenite::error::UrlError::NoHostName,
            ))?
            .to_string();
        let port = uri.port_u16().unwrap_or(443);
        let stream = self.connect(&host, port).await?;
        tokio_tungstenite::client_async_with_config(request, stream, config).await
    }

    /// [`Pin::websocket`] on a connection already made.
    pub async fn websocket_over<R: IntoClientRequest + Unpin>(
        &self,
        tcp: TcpStream,
        request: R,
        config: Option<WebSocketConfig>,
    ) -> Result<(WebSocketStream<TlsStream>, Response), WsError> {
        let stream = self.over(tcp).await?;
        tokio_tungstenite::client_async_with_config(request, stream, config).await
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let offered = Fingerprint::of_spki(cert.subject_public_key_info().as_ref());
        let mut key = self.key.lock().unwrap_or_else(|e| e.into_inner());
        match *key {
            Some(pinned) if pinned == offered => Ok(ServerCertVerified::assertion()),
            Some(pinned) => {
                tracing::warn!(pinned = %pinned.short(), offered = %offered.short(), "the server's key is not the pinned one");
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(KeyMismatch { pinned, offered })),
                )))
            }
            None => {
                tracing::info!(key = %offered.short(), "pinned the server's key on first use");
                *key = Some(offered);
                Ok(ServerCertVerified::assertion())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identity;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A TLS echo of one line, with `identity`'s key.
    async fn serve(identity: &Identity) -> anyhow::Result<u16> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let acceptor = tokio_rustls::TlsAcceptor::from(identity.server_config());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let mut buf = [0u8; 5];
                        if tls.read_exact(&mut buf).await.is_ok() {
                            drop(tls.write_all(&buf).await);
                        }
                    }
                });
            }
        });
        Ok(port)
    }

    #[tokio::test]
    async fn the_pinned_key_gets_through_and_another_is_refused_in_the_handshake(
    ) -> anyhow::Result<()> {
        let host = Identity::generate()?;
        let impostor = Identity::generate()?;
        let (host_port, impostor_port) = (serve(&host).await?, serve(&impostor).await?);
        let pin = Pin::to(host.fingerprint());
        let mut tls = pin.connect("127.0.0.1", host_port).await?;
        tls.write_all(b"hello").await?;
        let mut back = [0u8; 5];
        tls.read_exact(&mut back).await?;
        assert_eq!(&back, b"hello");

        let err = pin
            .connect("127.0.0.1", impostor_port)
            .await
            .expect_err("another key must not be trusted");
        let m = crate::find_mismatch(&err).expect("the error says the key changed");
        assert_eq!(m.pinned, host.fingerprint());
        assert_eq!(m.offered, impostor.fingerprint());
        Ok(())
    }

    #[tokio::test]
    async fn first_use_pins_the_first_key_and_refuses_the_next() -> anyhow::Result<()> {
        let (a, b) = (Identity::generate()?, Identity::generate()?);
        let (pa, pb) = (serve(&a).await?, serve(&b).await?);
        let pin = Pin::first_use();
        assert_eq!(pin.key(), None);
        pin.connect("127.0.0.1", pa).await?;
        assert_eq!(pin.clone().key(), Some(a.fingerprint()));
        assert!(pin.connect("127.0.0.1", pb).await.is_err());
        Ok(())
    }
}
