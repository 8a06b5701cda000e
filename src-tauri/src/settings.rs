//! What a person sets once and expects to find again: names, sound,
//! alerts, theme — and which venue this device belongs to, so a restart
//! (or a crash mid-event) comes back to the same clock. Kept with
//! tauri-plugin-store in the app's config folder.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tauri::{AppHandle, Runtime};
use tauri_plugin_store::StoreExt;

const FILE: &str = "settings.json";
const SETTINGS: &str = "settings";
const VENUE: &str = "venue";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Alerts {
    pub level_change: bool,
    pub one_minute: bool,
    pub breaks: bool,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            level_change: true,
            one_minute: true,
            breaks: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// Last address typed in "Join a venue".
    pub server_address: String,
    pub operator_name: String,
    pub device_name: String,
    pub sound_on: bool,
    /// 0.0–1.0.
    pub volume: f32,
    pub alerts: Alerts,
    /// "dark" or "light".
    pub theme: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server_address: String::new(),
            operator_name: String::new(),
            device_name: default_device_name(),
            sound_on: true,
            volume: 0.8,
            alerts: Alerts::default(),
            theme: "dark".into(),
        }
    }
}

fn default_device_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "this device".into())
}

impl Settings {
    /// Checks and tidies settings coming from the UI.
    pub fn validated(mut self) -> Result<Settings, String> {
        self.operator_name = self.operator_name.trim().to_string();
        self.device_name = self.device_name.trim().to_string();
        self.server_address = self.server_address.trim().to_string();
        for (field, v, max) in [
            ("operator name", &self.operator_name, 60),
            ("device name", &self.device_name, 60),
            ("server address", &self.server_address, 200),
        ] {
            if v.chars().count() > max {
                return Err(format!("the {field} is longer than {max} characters"));
            }
        }
        if !self.volume.is_finite() || !(0.0..=1.0).contains(&self.volume) {
            return Err("volume must be between 0 and 1".into());
        }
        if self.theme != "dark" && self.theme != "light" {
            return Err("theme must be dark or light".into());
        }
        Ok(self)
    }

    pub fn operator(&self) -> String {
        if self.operator_name.is_empty() {
            "Unnamed".into()
        } else {
            self.operator_name.clone()
        }
    }
}

/// Which venue this device was part of when it last ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum SavedVenue {
    Host {
        event_id: Option<String>,
    },
    Join {
        server: String,
        join_code: String,
        event_id: Option<String>,
    },
}

fn read<R: Runtime, T: for<'de> Deserialize<'de>>(app: &AppHandle<R>, key: &str) -> Option<T> {
    let store = app.store(FILE).ok()?;
    let v: Value = store.get(key)?;
    match serde_json::from_value(v) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!("ignoring unreadable {key} in {FILE}: {e}");
            None
        }
    }
}

fn write<R: Runtime, T: Serialize>(app: &AppHandle<R>, key: &str, v: &T) -> anyhow::Result<()> {
    let store = app.store(FILE)?;
    store.set(key, serde_json::to_value(v)?);
    store.save()?;
    Ok(())
}

pub fn load<R: Runtime>(app: &AppHandle<R>) -> Settings {
    read(app, SETTINGS).unwrap_or_default()
}

pub fn save<R: Runtime>(app: &AppHandle<R>, s: &Settings) -> anyhow::Result<()> {
    write(app, SETTINGS, s)
}

pub fn load_venue<R: Runtime>(app: &AppHandle<R>) -> Option<SavedVenue> {
    read(app, VENUE)
}

pub fn save_venue<R: Runtime>(app: &AppHandle<R>, v: Option<&SavedVenue>) -> anyhow::Result<()> {
    match v {
        Some(v) => write(app, VENUE, v),
        None => {
            let store = app.store(FILE)?;
            store.delete(VENUE);
            store.save()?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_and_trimmed() {
        let s = Settings {
            operator_name: "  Ana ".into(),
            ..Settings::default()
        };
        assert_eq!(s.validated().map(|s| s.operator_name), Ok("Ana".into()));
        let s = Settings {
            volume: 1.5,
            ..Settings::default()
        };
        assert!(s.validated().is_err());
        let s = Settings {
            theme: "neon".into(),
            ..Settings::default()
        };
        assert!(s.validated().is_err());
    }

    #[test]
    fn old_or_partial_settings_fill_in_defaults() {
        let s: Settings = serde_json::from_str(r#"{"soundOn": false}"#).expect("parses");
        assert!(!s.sound_on);
        assert_eq!(s.volume, 0.8);
        assert!(s.alerts.level_change);
    }
}
