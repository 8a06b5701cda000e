//! Join codes, session tokens and roles.
//!
//! A device joins with a long join code (one per role: coordinator, dealer,
//! display) or a one-time 6-digit pairing code made by a coordinator, and
//! gets a random 256-bit bearer token. Tokens are stored only as SHA-256 hashes,
//! so a copied store does not hand out working tokens, and they survive a
//! server restart, so a host that restarts does not log every screen out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use pitboss_core::ops::{Actor, Role};
use pitboss_core::protocol::PairingCode;
use rand::{Rng, RngCore};
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
    /// For wall screens and signage: reads everything, changes nothing.
    pub display: String,
}

/// A session as the server holds it in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub actor: Actor,
    /// Revoked by a coordinator: the token is refused with `revoked: true`.
    pub revoked: bool,
    /// When it was last known in use as of this server's start (or when it
    /// was made since); requests since then are in `AppState`'s last-seen
    /// map. A session idle past the venue's limit expires.
    pub since_ms: i64,
}

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// With the session's [`Session::since_ms`].
    Valid(Actor, i64),
    Revoked,
    Unknown,
}

/// How long a pairing code stays valid.
pub const PAIRING_TTL: Duration = Duration::from_secs(5 * 60);
/// Most pairing codes outstanding at once: each one is a chance for a
/// guesser, so the space of live codes stays tiny against 10^6.
pub const MAX_PAIRING_CODES: usize = 10;

struct Pairing {
    role: Role,
    expires_at_ms: i64,
}

/// How long a pairing exchange waits for the device's proof.
pub const EXCHANGE_TTL_MS: i64 = 60_000;
/// Pairing exchanges waiting for their proof at once: each holds a little
/// memory and was counted as a wrong code until it is proven.
pub const MAX_EXCHANGES: usize = 64;

/// A pairing exchange between the host's answer and the device's proof.
pub struct Exchange {
    /// The pairing code it ran with; `None` when the slot had no code (the
    /// answer is made with a random one, so it looks the same).
    pub code: Option<String>,
    pub host: pitboss_tls::pairing::HostExchange,
    /// When its wrong-code strike was counted, to take it back on success.
    pub struck_at: std::time::Instant,
    pub expires_at_ms: i64,
}

/// How a device joined, as listed to the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    JoinCode,
    Pairing,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::JoinCode => "join_code",
            Via::Pairing => "pairing",
        }
    }
}

pub struct Auth {
    /// Changed when a device that joined with one of them is revoked.
    codes: RwLock<JoinCodes>,
    /// token hash → who holds it. Loaded from the store at start, added to by
    /// the writer after a session commits, marked by a revoke.
    pub sessions: Arc<RwLock<HashMap<String, Session>>>,
    /// Outstanding one-time pairing codes. Kept in memory only: they live
    /// five minutes, and a restarted host shows new ones.
    pairing: Mutex<HashMap<String, Pairing>>,
    /// Pairing exchanges awaiting the device's proof, by exchange id.
    exchanges: Mutex<HashMap<String, Exchange>>,
}

impl Auth {
    pub fn new(codes: JoinCodes, sessions: Arc<RwLock<HashMap<String, Session>>>) -> Auth {
        Auth {
            codes: RwLock::new(codes),
            sessions,
            pairing: Mutex::default(),
            exchanges: Mutex::default(),
        }
    }

    pub fn codes(&self) -> JoinCodes {
        self.codes
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Replaces the long join code of `role` with a new random one (the
    /// revoked device knew the old one) and returns it.
    pub fn rotate_code(&self, role: Role) -> String {
        let mut codes = self.codes.write().unwrap_or_else(|e| e.into_inner());
        let fresh = loop {
            let c = random_join_code();
            if c != codes.coordinator && c != codes.dealer && c != codes.display {
                break c;
            }
        };
        match role {
            Role::Coordinator => codes.coordinator = fresh.clone(),
            Role::Dealer => codes.dealer = fresh.clone(),
            Role::Display => codes.display = fresh.clone(),
        }
        fresh
    }

    /// Replaces all three long join codes at once ("Lock the venue").
    pub fn rotate_all(&self) -> JoinCodes {
        for role in [Role::Coordinator, Role::Dealer, Role::Display] {
            self.rotate_code(role);
        }
        self.codes()
    }

    /// The role a long join code grants, if any. Codes are compared ignoring
    /// case and surrounding spaces, as people type them.
    pub fn role_for_code(&self, code: &str) -> Option<Role> {
        let code = code.trim().to_ascii_uppercase();
        let codes = self.codes();
        let mut found = None;
        // Every code is compared, so timing does not tell which one was close.
        for (c, role) in [
            (&codes.coordinator, Role::Coordinator),
            (&codes.dealer, Role::Dealer),
            (&codes.display, Role::Display),
        ] {
            if same(&code, &c.to_ascii_uppercase()) {
                found = Some(role);
            }
        }
        found
    }

    /// A 6-digit pairing code for `role`, valid [`PAIRING_TTL`].
    pub fn create_pairing(&self, role: Role, now_ms: i64) -> Result<PairingCode, String> {
        let mut map = self
            .pairing
            .lock()
            .map_err(|_| "pairing codes unavailable")?;
        map.retain(|_, p| p.expires_at_ms > now_ms);
        if map.len() >= MAX_PAIRING_CODES {
            return Err(format!(
                "at most {MAX_PAIRING_CODES} pairing codes may be outstanding; cancel one or wait for one to expire"
            ));
        }
        // Never a code that is also a long join code (one given on the
        // command line may be six digits): that one would win at join. And
        // never one whose first digit (its slot, see
        // `pitboss_tls::pairing`) an outstanding code has: a pairing
        // exchange names only the slot. Ten slots, at most ten codes.
        let code = loop {
            let n = rand::rng().random_range(0..1_000_000u32);
            let c = format!("{n:06}");
            let taken = map.keys().any(|k| k.as_bytes()[0] == c.as_bytes()[0]);
            if !taken && self.role_for_code(&c).is_none() {
                break c;
            }
        };
        let expires_at_ms = now_ms + PAIRING_TTL.as_millis() as i64;
        map.insert(
            code.clone(),
            Pairing {
                role,
                expires_at_ms,
            },
        );
        Ok(PairingCode {
            code,
            role,
            expires_at_ms,
        })
    }

    pub fn list_pairing(&self, now_ms: i64) -> Vec<PairingCode> {
        let Ok(mut map) = self.pairing.lock() else {
            return Vec::new();
        };
        map.retain(|_, p| p.expires_at_ms > now_ms);
        let mut codes: Vec<PairingCode> = map
            .iter()
            .map(|(code, p)| PairingCode {
                code: code.clone(),
                role: p.role,
                expires_at_ms: p.expires_at_ms,
            })
            .collect();
        codes.sort_by_key(|c| c.expires_at_ms);
        codes
    }

    /// Cancels one pairing code; false when there was none.
    pub fn cancel_pairing(&self, code: &str) -> bool {
        self.pairing
            .lock()
            .map(|mut m| m.remove(code.trim()).is_some())
            .unwrap_or(false)
    }

    /// Withdraws every pairing code (venue-wide guessing).
    pub fn withdraw_pairing(&self) {
        if let Ok(mut m) = self.pairing.lock() {
            m.clear();
        }
    }

    /// The role and way in for a code typed at join: a long join code, or a
    /// pairing code, which is used up by this call.
    pub fn redeem(&self, code: &str, now_ms: i64) -> Option<(Role, Via)> {
        if let Some(role) = self.role_for_code(code) {
            return Some((role, Via::JoinCode));
        }
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut map = self.pairing.lock().ok()?;
        let p = map.remove(code)?;
        (p.expires_at_ms > now_ms).then_some((p.role, Via::Pairing))
    }

    /// The live pairing code in `slot` (its first digit), if any.
    pub fn pairing_in_slot(&self, slot: u8, now_ms: i64) -> Option<String> {
        let map = self.pairing.lock().ok()?;
        map.iter()
            .find(|(code, p)| code.as_bytes()[0] == b'0' + slot && p.expires_at_ms > now_ms)
            .map(|(code, _)| code.clone())
    }

    /// Uses up a pairing code (not a long code): its role, if it was live.
    pub fn redeem_pairing(&self, code: &str, now_ms: i64) -> Option<Role> {
        let p = self.pairing.lock().ok()?.remove(code)?;
        (p.expires_at_ms > now_ms).then_some(p.role)
    }

    /// Keeps an exchange until its proof arrives; false when too many wait.
    /// Expired ones are dropped first.
    pub fn add_exchange(&self, id: String, x: Exchange, now_ms: i64) -> bool {
        let Ok(mut map) = self.exchanges.lock() else {
            return false;
        };
        map.retain(|_, x| x.expires_at_ms > now_ms);
        if map.len() >= MAX_EXCHANGES {
            return false;
        }
        map.insert(id, x);
        true
    }

    /// Takes the exchange `id` (it is good for one proof), if still live.
    pub fn take_exchange(&self, id: &str, now_ms: i64) -> Option<Exchange> {
        let x = self.exchanges.lock().ok()?.remove(id)?;
        (x.expires_at_ms > now_ms).then_some(x)
    }

    pub fn lookup(&self, token: &str) -> Lookup {
        let hash = hash_token(token);
        let Ok(map) = self.sessions.read() else {
            return Lookup::Unknown;
        };
        match map.get(&hash) {
            Some(s) if s.revoked => Lookup::Revoked,
            Some(s) => Lookup::Valid(s.actor.clone(), s.since_ms),
            None => Lookup::Unknown,
        }
    }
}

/// Marks every in-memory session of `operator_id` revoked. Called by the
/// writer once the revoke has committed, so memory never runs ahead of the
/// store.
pub fn mark_revoked(sessions: &RwLock<HashMap<String, Session>>, operator_id: &str) {
    let mut map = sessions.write().unwrap_or_else(|e| e.into_inner());
    for s in map.values_mut() {
        if s.actor.operator_id == operator_id {
            s.revoked = true;
        }
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
                display: "TUVW-XYZ2".into(),
            },
            Arc::default(),
        );
        assert_eq!(auth.role_for_code(" abcd-efgh "), Some(Role::Coordinator));
        assert_eq!(auth.role_for_code("JKMN-PQRS"), Some(Role::Dealer));
        assert_eq!(auth.role_for_code("tuvw-xyz2"), Some(Role::Display));
        assert_eq!(auth.role_for_code("JKMN-PQRT"), None);
        assert_eq!(auth.role_for_code(""), None);
        let code = random_join_code();
        assert_eq!(code.len(), 9);
        assert_ne!(random_hex(16), random_hex(16));
    }

    #[test]
    fn a_pairing_code_works_once_and_not_after_it_expires() {
        let auth = Auth::new(
            JoinCodes {
                coordinator: "ABCD-EFGH".into(),
                dealer: "JKMN-PQRS".into(),
                display: "TUVW-XYZ2".into(),
            },
            Arc::default(),
        );
        let p = auth.create_pairing(Role::Display, 1000).expect("code");
        assert_eq!(p.code.len(), 6);
        assert_eq!(p.expires_at_ms, 1000 + 300_000);
        assert_eq!(auth.list_pairing(1000).len(), 1);
        assert_eq!(
            auth.redeem(&p.code, 2000),
            Some((Role::Display, Via::Pairing))
        );
        assert_eq!(auth.redeem(&p.code, 2000), None, "single use");
        let q = auth.create_pairing(Role::Dealer, 1000).expect("code");
        assert_eq!(auth.redeem(&q.code, 1000 + 300_000), None, "expired");
        for _ in 0..MAX_PAIRING_CODES {
            auth.create_pairing(Role::Dealer, 5000).expect("room");
        }
        assert!(auth.create_pairing(Role::Dealer, 5000).is_err(), "capped");
        auth.withdraw_pairing();
        assert!(auth.list_pairing(5000).is_empty());
    }
}
