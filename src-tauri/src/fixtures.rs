//! What the shell's unit tests share: an event as a replica holds it.

use pitboss_client::Replica;
use pitboss_core::protocol::EventSnapshotState;
use pitboss_core::structure::deepstack_template;
use pitboss_core::{ClockState, EventDetails, Stats, Structure};

/// The demo deepstack at `seq`, its clock paused at the first level.
pub fn replica(event_id: &str, seq: u64) -> Replica {
    let structure = Structure::new(deepstack_template());
    Replica {
        event_id: event_id.into(),
        seq,
        state: EventSnapshotState {
            event: EventDetails {
                name: "Demo".into(),
                starting_stack: 20_000,
                buy_in: 100,
                rebuy_chips: 0,
                rebuy_price: 0,
                addon_chips: 0,
                addon_price: 0,
            },
            clock: ClockState::initial(&structure, 0),
            structure,
            stats: Stats::default(),
            incidents: vec![],
        },
    }
}
