//! Event details: the money and chips that turn counters into the figures a
//! floor announces (average stack, prize pool).

use serde::{Deserialize, Serialize};

use crate::limits::{MAX_CHIPS, MAX_EVENT_NAME_CHARS};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDetails {
    pub name: String,
    /// Chips each entry starts with.
    #[serde(default)]
    pub starting_stack: u64,
    /// What one entry pays into the prize pool, in the venue's currency units.
    #[serde(default)]
    pub buy_in: u64,
    #[serde(default)]
    pub rebuy_chips: u64,
    #[serde(default)]
    pub rebuy_price: u64,
    #[serde(default)]
    pub addon_chips: u64,
    #[serde(default)]
    pub addon_price: u64,
}

impl EventDetails {
    pub fn validate(&self) -> Result<(), String> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err("name must not be empty".into());
        }
        if name.chars().count() > MAX_EVENT_NAME_CHARS {
            return Err(format!(
                "name is longer than {MAX_EVENT_NAME_CHARS} characters"
            ));
        }
        for (field, v) in [
            ("starting_stack", self.starting_stack),
            ("buy_in", self.buy_in),
            ("rebuy_chips", self.rebuy_chips),
            ("rebuy_price", self.rebuy_price),
            ("addon_chips", self.addon_chips),
            ("addon_price", self.addon_price),
        ] {
            if v > MAX_CHIPS {
                return Err(format!("{field} must be at most {MAX_CHIPS}"));
            }
        }
        Ok(())
    }
}
