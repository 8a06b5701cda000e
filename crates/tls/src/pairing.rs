//! Pairing with a 6-digit code before the host's key is pinned, so that a
//! man in the middle at that first contact learns nothing and gets nothing.
//!
//! The code is never sent. Device and host run SPAKE2 with it as the
//! password: each ends with the same key only if both used the same code,
//! and a listener (or an impostor) cannot test guesses offline. Each side
//! then proves it holds that key with an HMAC over the exchange *and the
//! TLS key it sees*: the host over its own key, the device over the key its
//! handshake saw. A man in the middle terminating TLS shows the device its
//! own key, so the host's proof fails on the device, which stops there: no
//! proof of its own, no token. The device pins the key only when the host's
//! proof holds.
//!
//! Which code an exchange is for is the code's first digit, its *slot*:
//! the host keeps the outstanding codes' first digits distinct (at most ten
//! are outstanding), so a guesser still has one chance in 10^5 per try, as
//! with ten live codes in 10^6.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use spake2::{Ed25519Group, Identity as Side, Password, Spake2};

use crate::Fingerprint;

const DEVICE: &[u8] = b"pitboss device";
const HOST: &[u8] = b"pitboss host";

/// Why a pairing exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    #[error("the pairing exchange is malformed")]
    Malformed,
    /// A wrong code, or someone between the device and the host: the two
    /// cannot be told apart, and neither may go on.
    #[error("the pairing did not check out: the code is wrong, or something between this device and the host is not the host")]
    Mismatch,
}

/// The slot of a 6-digit code: its first digit.
pub fn slot(code: &str) -> Option<u8> {
    let b = code.as_bytes();
    (b.len() == 6 && b.iter().all(u8::is_ascii_digit)).then(|| b[0] - b'0')
}

/// The device's side of one exchange.
pub struct DeviceExchange {
    state: Spake2<Ed25519Group>,
    message: Vec<u8>,
}

impl DeviceExchange {
    /// Starts with the code a person typed; the message goes to the host.
    pub fn start(code: &str) -> (DeviceExchange, Vec<u8>) {
        let (state, message) = Spake2::<Ed25519Group>::start_a(
            &Password::new(code.as_bytes()),
            &Side::new(DEVICE),
            &Side::new(HOST),
        );
        let m = message.clone();
        (DeviceExchange { state, message }, m)
    }

    /// Checks the host's answer against the TLS key this device saw
    /// (`seen`); when it holds, returns the device's own proof for the host.
    pub fn finish(
        self,
        host_message: &[u8],
        host_proof: &[u8],
        seen: Fingerprint,
    ) -> Result<Vec<u8>, PairingError> {
        let key = self
            .state
            .finish(host_message)
            .map_err(|_| PairingError::Malformed)?;
        let transcript = transcript(&self.message, host_message);
        mac(&key, HOST, seen, &transcript)
            .verify_slice(host_proof)
            .map_err(|_| PairingError::Mismatch)?;
        Ok(mac(&key, DEVICE, seen, &transcript)
            .finalize()
            .into_bytes()
            .to_vec())
    }
}

/// The host's side of one exchange, kept until the device's proof arrives.
pub struct HostExchange {
    key: Vec<u8>,
    transcript: Vec<u8>,
}

impl HostExchange {
    /// Answers a device's message for `code`, with the host's own key
    /// `own`: the message and proof go back to the device.
    pub fn answer(
        code: &str,
        device_message: &[u8],
        own: Fingerprint,
    ) -> Result<(HostExchange, Vec<u8>, Vec<u8>), PairingError> {
        let (state, message) = Spake2::<Ed25519Group>::start_b(
            &Password::new(code.as_bytes()),
            &Side::new(DEVICE),
            &Side::new(HOST),
        );
        let key = state
            .finish(device_message)
            .map_err(|_| PairingError::Malformed)?;
        let transcript = transcript(device_message, &message);
        let proof = mac(&key, HOST, own, &transcript)
            .finalize()
            .into_bytes()
            .to_vec();
        Ok((HostExchange { key, transcript }, message, proof))
    }

    /// Whether the device proved the same key over the host's own TLS key.
    pub fn check(&self, device_proof: &[u8], own: Fingerprint) -> bool {
        mac(&self.key, DEVICE, own, &self.transcript)
            .verify_slice(device_proof)
            .is_ok()
    }
}

/// Both messages, each with its length, so no two exchanges read alike.
fn transcript(device: &[u8], host: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(device.len() + host.len() + 16);
    for part in [device, host] {
        t.extend_from_slice(&(part.len() as u64).to_be_bytes());
        t.extend_from_slice(part);
    }
    t
}

fn mac(key: &[u8], side: &[u8], tls_key: Fingerprint, transcript: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(side);
    m.update(tls_key.hex().as_bytes());
    m.update(transcript);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(s: &str) -> Fingerprint {
        Fingerprint::of_spki(s.as_bytes())
    }

    #[test]
    fn the_same_code_and_the_same_tls_key_pair() {
        let (device, msg_a) = DeviceExchange::start("417302");
        let (host, msg_b, host_proof) =
            HostExchange::answer("417302", &msg_a, fp("host")).expect("answer");
        let device_proof = device
            .finish(&msg_b, &host_proof, fp("host"))
            .expect("the host's proof holds");
        assert!(host.check(&device_proof, fp("host")));
        assert_eq!(slot("417302"), Some(4));
        assert_eq!(slot("41730"), None);
    }

    #[test]
    fn a_wrong_code_fails_on_both_sides() {
        let (device, msg_a) = DeviceExchange::start("417302");
        let (host, msg_b, host_proof) =
            HostExchange::answer("417303", &msg_a, fp("host")).expect("answer");
        assert_eq!(
            device.finish(&msg_b, &host_proof, fp("host")),
            Err(PairingError::Mismatch)
        );
        assert!(!host.check(&[0u8; 32], fp("host")));
    }

    #[test]
    fn a_man_in_the_middle_with_another_tls_key_is_caught_by_both() {
        // The device saw the middleman's key; the host proves over its own.
        let (device, msg_a) = DeviceExchange::start("417302");
        let (_host, msg_b, host_proof) =
            HostExchange::answer("417302", &msg_a, fp("host")).expect("answer");
        assert_eq!(
            device.finish(&msg_b, &host_proof, fp("middleman")),
            Err(PairingError::Mismatch)
        );
        // And the host refuses a device proof made over any key but its
        // own, even one that is right in every other way.
        let (device, msg_a) = DeviceExchange::start("417302");
        let (host, msg_b, proof_over_middle) =
            HostExchange::answer("417302", &msg_a, fp("middleman")).expect("answer");
        let device_proof = device
            .finish(&msg_b, &proof_over_middle, fp("middleman"))
            .expect("consistent over the middleman's key");
        assert!(host.check(&device_proof, fp("middleman")));
        assert!(!host.check(&device_proof, fp("host")));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        assert!(matches!(
            HostExchange::answer("417302", b"nonsense", fp("host")),
            Err(PairingError::Malformed)
        ));
    }
}
