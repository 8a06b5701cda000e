//! The venue's network between a client and the server: the project's fault
//! proxy (latency, stalls, resets, blocked upgrades).

pub use pitboss_faultproxy::Proxy;
