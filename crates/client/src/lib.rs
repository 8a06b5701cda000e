//! The Pitboss sync engine: what every screen runs to stay in step with the
//! venue server. It knows nothing of Tauri, so tests and benchmarks can run
//! many headless clients.
//!
//! - [`sync`]: the client protocol without I/O (acks, gaps, outbox, pings).
//! - [`Client`] ([`engine`]): the handle, and the connection actor that
//!   carries out what `sync` decides over a [`transport`] link.
//! - [`Replica`]: the one way the client's state changes (rule 2 of
//!   docs/architecture.md).
//! - [`Cache`]: last known state, session token, durable outbox.
//! - [`OffsetEstimator`]: server time from ping/pong (rule 6).
//! - [`Backoff`]: capped, jittered reconnect delays (rule 8).
//! - [`Venue`]: login, event list and creation before following an event.
//! - [`alerts`]: when a screen may make a sound (rule 7).
//! - [`sleep`]: noticing that the machine slept (rule 9).

pub mod alerts;
pub mod backoff;
pub mod cache;
pub mod engine;
pub mod offset;
pub mod replica;
pub mod sleep;
pub mod sync;
pub mod time;
pub mod transport;
pub mod venue;

pub use backoff::Backoff;
pub use cache::{Cache, PendingOp};
pub use engine::{Client, Config, InvalidOp, Notice, Outcome, Status};
pub use offset::OffsetEstimator;
pub use replica::{Applied, Replica};
pub use venue::{server_url, Venue, VenueConfig, VenueError};
