//! The pure domain of Pitboss: blind structures, the tournament clock, floor
//! incidents, the stats counters, the operations that change them, and the wire
//! protocol spoken between the server and its clients.
//!
//! Nothing in this crate does I/O or reads a clock: every function that needs
//! "now" takes it as an argument. That is what lets the server, every client and
//! the property tests compute the very same clock position for the same instant,
//! and it is the line this crate must never cross.

pub mod audit;
pub mod clock;
pub mod event;
pub mod incident;
pub mod limits;
pub mod ops;
pub mod protocol;
pub mod stats;
pub mod structure;

pub use clock::{ClockState, Position};
pub use event::EventDetails;
pub use incident::{Incident, IncidentStatus, Severity};
pub use ops::{apply, Actor, ChangeRecords, Op, OpError, Role};
pub use stats::Stats;
pub use structure::{Level, Structure};
