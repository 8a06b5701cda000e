//! The coordinator's trust tools: pairing codes, the device list, revoking
//! a device, the audit trail and its export. Who may use them is the
//! server's to say (its answer is `forbidden` for anyone but a
//! coordinator); the shell adds the server's "now" so countdowns and "last
//! seen" do not depend on this machine's clock.

use pitboss_core::protocol::{LockResult, PairingCode, RevokeResult};
use pitboss_core::Role;

use super::Shell;
use crate::error::CmdError;
use crate::ipc::{AuditView, DevicesView, ExportedAudit, PairingListView, PairingView};

impl Shell {
    /// The server's time now: the followed event's estimate, else this
    /// machine's clock (the host's own, or close enough on a LAN).
    async fn server_now_ms(&self) -> i64 {
        match self.client().await {
            Ok(c) => c.server_now_ms(),
            Err(_) => pitboss_client::time::steady_ms(),
        }
    }

    fn pairing_view(p: PairingCode, server_now_ms: i64) -> PairingView {
        PairingView {
            code: p.code,
            role: p.role,
            expires_at_ms: p.expires_at_ms,
            server_now_ms,
        }
    }

    pub async fn pairing_create(&self, role: &str) -> Result<PairingView, CmdError> {
        let role = Role::parse(role).ok_or_else(|| {
            CmdError::new(
                "invalid",
                format!("\"{role}\" is not a role: coordinator, dealer or display"),
            )
        })?;
        let venue = self.venue().await?;
        let p = self.venue_result(venue.create_pairing(role).await).await?;
        Ok(Self::pairing_view(p, self.server_now_ms().await))
    }

    pub async fn pairing_list(&self) -> Result<PairingListView, CmdError> {
        let venue = self.venue().await?;
        let codes = self.venue_result(venue.pairings().await).await?;
        let now = self.server_now_ms().await;
        Ok(PairingListView {
            codes: codes
                .into_iter()
                .map(|p| Self::pairing_view(p, now))
                .collect(),
            server_now_ms: now,
        })
    }

    /// Cancels a pairing code. The code becomes part of the request's path,
    /// so only six digits are let through.
    pub async fn pairing_cancel(&self, code: &str) -> Result<(), CmdError> {
        if !pitboss_client::venue::is_pairing_code(code) {
            return Err(CmdError::new("invalid", "a pairing code has 6 digits"));
        }
        let venue = self.venue().await?;
        self.venue_result(venue.cancel_pairing(code).await).await
    }

    pub async fn devices_list(&self) -> Result<DevicesView, CmdError> {
        let venue = self.venue().await?;
        let devices = self.venue_result(venue.devices().await).await?;
        Ok(DevicesView {
            devices,
            server_now_ms: self.server_now_ms().await,
            self_operator_id: venue.stored_session().map(|s| s.operator_id),
        })
    }

    /// Revokes a device (the server refuses this device's own).
    pub async fn device_revoke(&self, operator_id: &str) -> Result<RevokeResult, CmdError> {
        let venue = self.venue().await?;
        let r = self.venue_result(venue.revoke(operator_id).await).await;
        // A replaced join code changes what the host's header shows.
        self.announce().await;
        r
    }

    /// Locks the venue; the host's header then shows the new codes.
    pub async fn lock_venue(&self) -> Result<LockResult, CmdError> {
        let venue = self.venue().await?;
        let r = self.venue_result(venue.lock_venue().await).await;
        self.announce().await;
        r
    }

    async fn open_event_id(&self) -> Result<String, CmdError> {
        Ok(self.client().await?.event_id().to_string())
    }

    pub async fn audit_list(
        &self,
        incident_id: Option<String>,
        limit: Option<u32>,
    ) -> Result<AuditView, CmdError> {
        let venue = self.venue().await?;
        let event_id = self.open_event_id().await?;
        let entries = self
            .venue_result(venue.audit(&event_id, incident_id.as_deref(), limit).await)
            .await?;
        Ok(AuditView {
            event_id,
            incident_id,
            entries,
        })
    }

    /// Writes the open event's audit trail, as the server's CSV, to the
    /// download folder, and says where.
    pub async fn export_audit(&self) -> Result<ExportedAudit, CmdError> {
        let venue = self.venue().await?;
        let event_id = self.open_event_id().await?;
        let csv = self.venue_result(venue.audit_csv(&event_id).await).await?;
        let dir = crate::export::download_dir(&self.app);
        let path = crate::export::write_csv(&dir, &event_id, &csv)
            .map_err(|e| CmdError::new("internal", format!("{e:#}")))?;
        Ok(ExportedAudit {
            path: path.display().to_string(),
            rows: crate::export::data_rows(&csv),
        })
    }
}
