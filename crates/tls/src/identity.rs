//! The server's side: one key, made on the first start and kept in the
//! data folder (readable by its owner only), and a self-signed
//! certificate that carries it. The certificate is made anew at each start
//! from the kept key: devices pin the key, so nothing in the certificate
//! (dates, serial) needs to last.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::Fingerprint;

/// The key file's name in the data folder.
const KEY_FILE: &str = "tls-key.pem";

/// A server's key and the TLS configuration that presents it.
#[derive(Clone)]
pub struct Identity {
    config: Arc<rustls::ServerConfig>,
    fingerprint: Fingerprint,
}

impl Identity {
    /// The key kept in `dir`, made (and written, mode 0600) if there is
    /// none yet. A key file that cannot be read is an error, never a
    /// reason to make a new key: every device would then refuse the host.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Identity> {
        let path = dir.join(KEY_FILE);
        let key = match std::fs::read_to_string(&path) {
            Ok(pem) => rcgen::KeyPair::from_pem(&pem)
                .with_context(|| format!("{} is not a private key", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = rcgen::KeyPair::generate().context("cannot make a key")?;
                write_private(&path, key.serialize_pem().as_bytes())?;
                tracing::info!(path = %path.display(), "made this server's TLS key");
                key
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Identity::from_key(&key)
    }

    /// A key that lives only as long as the process (tests' impostors).
    pub fn generate() -> anyhow::Result<Identity> {
        Identity::from_key(&rcgen::KeyPair::generate().context("cannot make a key")?)
    }

    fn from_key(key: &rcgen::KeyPair) -> anyhow::Result<Identity> {
        let params = rcgen::CertificateParams::new(vec!["pitboss".to_string()])
            .context("certificate parameters")?;
        let cert = params
            .self_signed(key)
            .context("cannot sign a certificate")?;
        let fingerprint = Fingerprint::of_spki(&key.public_key_der());
        let chain = vec![CertificateDer::from(cert.der().to_vec())];
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = rustls::ServerConfig::builder_with_provider(crate::provider())
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .context("the key does not fit its certificate")?;
        // HTTP/1.1 only: the WebSocket upgrade is an HTTP/1.1 request.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Identity {
            config: Arc::new(config),
            fingerprint,
        })
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.config.clone()
    }
}

/// Writes a secret so that it is never readable by others, not even for a
/// moment: created 0600 under a temporary name, then renamed into place.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp: PathBuf = path.with_extension("pem.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn the_key_is_kept_private_and_the_same_across_restarts() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let first = Identity::load_or_create(dir.path())?;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is for its owner only");
        let again = Identity::load_or_create(dir.path())?;
        assert_eq!(first.fingerprint(), again.fingerprint());
        assert_ne!(first.fingerprint(), Identity::generate()?.fingerprint());
        Ok(())
    }

    #[test]
    fn an_unreadable_key_is_an_error_not_a_new_key() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join(KEY_FILE), "not a key")?;
        assert!(Identity::load_or_create(dir.path()).is_err());
        Ok(())
    }
}
