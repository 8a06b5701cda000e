//! The properties Pitboss is fuzzed against, one plain function per target:
//! [`frame::check`], [`op::check`] and [`clock::check`]. Each takes the raw
//! bytes a fuzzer made up and panics when a promise of the code under test
//! is broken.
//!
//! They live here, on stable Rust, rather than in the cargo-fuzz targets, so
//! that the very same checks replay the committed corpus under `cargo test`
//! (`tests/corpus.rs`): an input that once crashed stays in `fuzz/seeds/`
//! and fails the ordinary test run if the bug ever comes back. The fuzz
//! targets in `fuzz/` are one call each into this crate.
//!
//! The harness only calls `pitboss-core` and states, independently of it,
//! what a director or a dealer must be able to rely on. The library (its
//! tests aside) must stay free of I/O and of the server crate, so that a
//! fuzz build stays small and fast.

pub mod clock;
pub mod frame;
pub mod gen;
pub mod op;
