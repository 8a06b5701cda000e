//! What a person compares and what a device pins: the SHA-256 of the
//! server's public key (its DER SubjectPublicKeyInfo, the same hash that
//! `curl --pinnedpubkey sha256//…` takes, there in base64).

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The SHA-256 of a server's public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER SubjectPublicKeyInfo.
    pub fn of_spki(spki_der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(spki_der).into())
    }

    /// All of it, in lower-case hex: what devices store and what a
    /// script passes.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// What a person reads off one screen and compares with another:
    /// the first 80 bits in five groups of four (`3F2A 91C0 7BE4 D215
    /// 0C9E`). Making a key whose fingerprint starts the same takes about
    /// 2^80 tries, far past an attacker on a venue's Wi-Fi.
    pub fn short(&self) -> String {
        let h = self.hex().to_ascii_uppercase();
        h.as_bytes()[..20]
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.short())
    }
}

impl FromStr for Fingerprint {
    type Err = String;

    /// Takes the 64 hex digits, in either case, with or without spaces or
    /// colons between them (as a person may copy them).
    fn from_str(s: &str) -> Result<Fingerprint, String> {
        let digits: String = s
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ':' && *c != '-')
            .collect();
        let mut out = [0u8; 32];
        match hex::decode_to_slice(&digits, &mut out) {
            Ok(()) => Ok(Fingerprint(out)),
            Err(_) => Err(format!(
                "\"{}\" is not a key fingerprint (64 hex digits)",
                s.trim()
            )),
        }
    }
}

/// The server offered a key other than the one this device pinned.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the server's key ({}) is not the key this device joined ({})", offered.short(), pinned.short())]
pub struct KeyMismatch {
    pub pinned: Fingerprint,
    pub offered: Fingerprint,
}

/// Finds a [`KeyMismatch`] anywhere in an error's chain (a `reqwest` or
/// WebSocket error wraps the handshake's). An `io::Error` hides what it
/// wraps from `source()`, so each is opened by hand.
pub fn find_mismatch(err: &(dyn std::error::Error + 'static)) -> Option<KeyMismatch> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(m) = e.downcast_ref::<KeyMismatch>() {
            return Some(m.clone());
        }
        if let Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(o))) =
            e.downcast_ref::<rustls::Error>()
        {
            if let Some(m) = o.0.downcast_ref::<KeyMismatch>() {
                return Some(m.clone());
            }
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(m) = find_mismatch(inner) {
                return Some(m);
            }
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_reads_back_from_what_a_person_copies() {
        let fp = Fingerprint::of_spki(b"some key");
        assert_eq!(fp.hex().len(), 64);
        assert_eq!(fp.hex().parse::<Fingerprint>(), Ok(fp));
        let spaced = fp
            .hex()
            .to_ascii_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(spaced.parse::<Fingerprint>(), Ok(fp));
        assert_eq!(fp.short().len(), 24);
        assert!(fp
            .hex()
            .to_ascii_uppercase()
            .starts_with(&fp.short().replace(' ', "")));
        assert!("3F2A 91C0".parse::<Fingerprint>().is_err());
        assert!("zz".repeat(32).parse::<Fingerprint>().is_err());
    }

    #[test]
    fn a_mismatch_is_found_through_io_and_rustls_wrappers() {
        let m = KeyMismatch {
            pinned: Fingerprint::of_spki(b"a"),
            offered: Fingerprint::of_spki(b"b"),
        };
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
            rustls::OtherError(std::sync::Arc::new(m.clone())),
        ));
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let wrapped = anyhow::Error::new(io).context("dialing");
        let found = find_mismatch(wrapped.as_ref()).map(|f| f.offered);
        assert_eq!(found, Some(m.offered));
        let other = std::io::Error::other("refused");
        assert!(find_mismatch(&other).is_none());
    }
}
