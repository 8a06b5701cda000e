//! Floor incidents: what a dealer calls the floor for, and its life cycle.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Open,
    Acknowledged,
    Resolved,
}

impl IncidentStatus {
    fn rank(self) -> u8 {
        match self {
            IncidentStatus::Open => 0,
            IncidentStatus::Acknowledged => 1,
            IncidentStatus::Resolved => 2,
        }
    }

    /// Status only moves forward (open → acknowledged → resolved, skipping
    /// allowed). Going back is a re-open, which must be asked for explicitly so
    /// that a stale screen cannot quietly undo the floor's decision.
    pub fn may_become(self, next: IncidentStatus, reopen: bool) -> Result<(), String> {
        if next.rank() >= self.rank() {
            return Ok(());
        }
        if reopen && next == IncidentStatus::Open {
            return Ok(());
        }
        Err(format!(
            "an incident that is {} cannot go back to {}; re-open it explicitly (\"reopen\": true, status \"open\")",
            self.as_str(),
            next.as_str()
        ))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Resolved => "resolved",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    /// The stored and wire name (as serde writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub table: String,
    pub kind: String,
    pub severity: Severity,
    pub status: IncidentStatus,
    pub note: String,
    /// Operator name of whoever raised it.
    pub created_by: String,
    /// Bumped by every accepted update; an update names the version it saw.
    pub lock_version: u64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::IncidentStatus::*;

    #[test]
    fn status_moves_forward_and_reopens_only_when_asked() {
        assert!(Open.may_become(Acknowledged, false).is_ok());
        assert!(Open.may_become(Resolved, false).is_ok());
        assert!(Resolved.may_become(Resolved, false).is_ok());
        assert!(Resolved.may_become(Acknowledged, false).is_err());
        assert!(Resolved.may_become(Open, false).is_err());
        assert!(Resolved.may_become(Open, true).is_ok());
        assert!(Resolved.may_become(Acknowledged, true).is_err());
    }
}
