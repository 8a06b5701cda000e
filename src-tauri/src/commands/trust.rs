//! The coordinator's tools: pairing codes, devices, the audit trail.

use pitboss_core::protocol::{LockResult, RevokeResult};
use tauri::State;

use super::Res;
use crate::ipc::{AuditView, DevicesView, ExportedAudit, PairingListView, PairingView};
use crate::shell::Shell;

/// A 6-digit pairing code for a device that is to join with `role`.
#[tauri::command]
pub async fn pairing_create(shell: State<'_, Shell>, role: String) -> Res<PairingView> {
    shell.pairing_create(&role).await
}

#[tauri::command]
pub async fn pairing_list(shell: State<'_, Shell>) -> Res<PairingListView> {
    shell.pairing_list().await
}

#[tauri::command]
pub async fn pairing_cancel(shell: State<'_, Shell>, code: String) -> Res<()> {
    shell.pairing_cancel(&code).await
}

#[tauri::command]
pub async fn devices_list(shell: State<'_, Shell>) -> Res<DevicesView> {
    shell.devices_list().await
}

#[tauri::command]
pub async fn device_revoke(shell: State<'_, Shell>, operator_id: String) -> Res<RevokeResult> {
    shell.device_revoke(&operator_id).await
}

/// "Lock the venue": new join codes, no pairing codes, every device but
/// the host signed out.
#[tauri::command]
pub async fn lock_venue(shell: State<'_, Shell>) -> Res<LockResult> {
    shell.lock_venue().await
}

/// The open event's audit trail, newest first; one incident's with
/// `incident_id`.
#[tauri::command]
pub async fn audit_list(
    shell: State<'_, Shell>,
    incident_id: Option<String>,
    limit: Option<u32>,
) -> Res<AuditView> {
    shell.audit_list(incident_id, limit).await
}

#[tauri::command]
pub async fn export_audit(shell: State<'_, Shell>) -> Res<ExportedAudit> {
    shell.export_audit().await
}
