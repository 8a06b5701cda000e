//! The server's integration tests: the real `pitboss-server` binary on a
//! loopback port, driven over HTTP and WebSocket, one module per concern.
//!
//! One test crate rather than one per file: the harness in `common` is
//! compiled and linked once, and the dead-code lint sees every use of it,
//! so a helper no test calls any more is reported.

mod common;

mod bad_input;
mod crash;
mod dead_peer;
mod delivery;
mod exactly_once;
mod races;
mod resume;
mod slow_subscriber;
mod store_size;
mod trust;
