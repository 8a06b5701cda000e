//! The pinned channel between Pitboss devices and their host.
//!
//! A venue has no certificate authority and its host has no domain name,
//! so trust is by key, as SSH does it: the server makes one key on its
//! first start and keeps it ([`Identity`]); each device pins the
//! SHA-256 of that key's public part ([`Fingerprint`]) when it joins and
//! from then on talks only to a server that proves it holds that key
//! ([`Pin`]). There is no hostname check (the host is reached by a LAN
//! address that changes), no expiry check (the certificate is only a
//! carrier for the key), but the handshake signature is always checked:
//! a server that merely replays the host's certificate cannot finish it.

mod fingerprint;
mod identity;
pub mod pairing;
mod pin;

pub use fingerprint::{find_mismatch, Fingerprint, KeyMismatch};
pub use identity::Identity;
pub use pin::{Pin, TlsStream};

use std::sync::Arc;

/// The one crypto provider every config here is built with, so a crate
/// elsewhere in the build that turns on another cannot change which runs.
/// *ring*: it builds with the C compiler alone (aws-lc needs more, and
/// minutes more on a small machine) and is what reqwest's rustls uses.
/// rustls deprecates it for lacking post-quantum key exchange, which a
/// venue's one-night sessions do not need.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
