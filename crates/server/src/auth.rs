//! Join codes, session tokens and roles.
//!
//! A device joins with a join code (one for coordinators, one for dealers)
//! and gets a random bearer token. Tokens are stored only as SHA-256 hashes,
//! so a copied store does not hand out working tokens, and they survive a
//! server restart, so a host that restarts does not log every screen out.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use pitboss_core::ops::{Actor, Role};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Random bytes as lowercase hex, from the OS-seeded CSPRNG.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A join code people can read out across a room: no 0/O, 1/I/L.
pub fn random_join_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut buf = [0u8; 8];
    rand::rng().fill_bytes(&mut buf);
    let chars: String = buf
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("{}-{}", &chars[..4], &chars[4..])
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares without stopping at the first difference, so response time does
/// not tell a guesser how many leading characters were right.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The codes that let a device join, as printed at start and shown to the host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JoinCodes {
    pub coordinator: String,
    pub dealer: String,
}

pub struct Auth {
    codes: JoinCodes,
    /// token hash → who holds it. Loaded from the store at start, added to by
    /// the writer after a session commits.
    pub sessions: Arc<RwLock<HashMap<String, Actor>>>,
}

impl Auth {
    pub fn new(codes: JoinCodes, sessions: Arc<RwLock<HashMap<String, Actor>>>) -> Auth {
        Auth { codes, sessions }
    }

    pub fn codes(&self) -> &JoinCodes {
        &self.codes
    }

    /// The role a join code grants, if any. Codes are compared ignoring case
    /// and surrounding spaces, as people type them.
    pub fn role_for_code(&self, code: &str) -> Option<Role> {
        let code = code.trim().to_ascii_uppercase();
        if same(&code, &self.codes.coordinator.to_ascii_uppercase()) {
            Some(Role::Coordinator)
        } else if same(&code, &self.codes.dealer.to_ascii_uppercase()) {
            Some(Role::Dealer)
        } else {
            None
        }
    }

    pub fn lookup(&self, token: &str) -> Option<Actor> {
        let hash = hash_token(token);
        self.sessions.read().ok()?.get(&hash).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_codes_match_loosely_but_only_themselves() {
        let auth = Auth::new(
            JoinCodes {
                coordinator: "ABCD-EFGH".into(),
                dealer: "JKMN-PQRS".into(),
            },
            Arc::default(),
        );
        assert_eq!(auth.role_for_code(" abcd-efgh "), Some(Role::Coordinator));
        assert_eq!(auth.role_for_code("JKMN-PQRS"), Some(Role::Dealer));
        assert_eq!(auth.role_for_code("JKMN-PQRT"), None);
        assert_eq!(auth.role_for_code(""), None);
        let code = random_join_code();
        assert_eq!(code.len(), 9);
        assert_ne!(random_hex(16), random_hex(16));
    }
}
