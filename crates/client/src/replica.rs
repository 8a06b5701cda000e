//! The client's copy of one event, and the one way it changes (rule 2 of docs/architecture.md).
//!
//! State changes only by applying sequenced messages: a snapshot replaces
//! everything; a change with seq = last + 1 replaces the records it carries;
//! seq <= last is a duplicate and ignored; anything further ahead is a gap
//! and asks the caller to resume. The ack of this client's own op carries the
//! same records and seq as its broadcast, so it goes through the same door:
//! whichever of the two arrives first applies, the other is a duplicate.

use pitboss_core::ops::ChangeRecords;
use pitboss_core::protocol::EventSnapshotState;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replica {
    pub event_id: String,
    /// Seq of the last change this state includes.
    pub seq: u64,
    pub state: EventSnapshotState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The state moved to this seq.
    Applied,
    /// Already had it; nothing changed.
    Duplicate,
    /// Changes are missing before this one: resume from `seq`.
    Gap,
}

impl Replica {
    /// Applies the records of change `seq`.
    pub fn apply(&mut self, seq: u64, records: &ChangeRecords) -> Applied {
        if seq <= self.seq {
            return Applied::Duplicate;
        }
        if seq != self.seq + 1 {
            return Applied::Gap;
        }
        self.seq = seq;
        let st = &mut self.state;
        records.replace_in(&mut st.clock, &mut st.stats, &mut st.structure);
        if let Some(i) = &records.incident {
            match self.state.incidents.iter_mut().find(|x| x.id == i.id) {
                Some(x) => *x = i.clone(),
                None => self.state.incidents.push(i.clone()),
            }
        }
        Applied::Applied
    }
}
