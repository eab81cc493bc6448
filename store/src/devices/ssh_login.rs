//! What the collector needs to open a shell on a device for a technician:
//! its SSH login (password still sealed) and its host key pin, which the
//! first session pins when backups have not yet.
use super::{AssignedDevice, AssignedRow, DeviceId, assigned, reports};
use crate::row_scope::RowScope;
use crate::{Store, StoreError, TenantScope, now_ms, on_pool};

impl Store {
    /// The SSH login of one of the tenant's live devices.
    pub async fn device_ssh_login(&self, scope: &TenantScope, device: DeviceId) -> Result<AssignedDevice, StoreError> {
        on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            let row: Option<AssignedRow> = sqlx::query_as(
                "SELECT id, tenant_id, address, api_port, api_tls, ssh_port, username, password_sealed, \
                 poll_interval_secs, api_tls_pin, ssh_host_key_pin FROM devices \
                 WHERE id = $1 AND tenant_id = $2 AND deleted_at_ms IS NULL",
            )
            .bind(device.to_string())
            .bind(scope.tenant().to_string())
            .fetch_optional(pool)
            .await?;
            row.map(assigned)
                .transpose()?
                .ok_or_else(|| StoreError::NotFound(format!("device {device}")))
        })
    }

    /// Pins `sha256` (hex) as the device's SSH host key if none is pinned
    /// yet, with a device event; `false` when a pin was already there (it is
    /// left alone: changing a pin is an operator's decision).
    pub async fn pin_ssh_host_key_on_first_use(
        &self,
        scope: &TenantScope,
        device: DeviceId,
        sha256: &str,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let (tenant, id) = (scope.tenant().to_string(), device.to_string());
        on_pool!(self, RowScope::tenant(scope), pool, Db => {
            let mut tx = pool.begin().await?;
            // The assignment's version moves with updated_at_ms, so the agent
            // gets the pin for its backups.
            let n = sqlx::query(
                "UPDATE devices SET ssh_host_key_pin = $1, updated_at_ms = $2 \
                 WHERE id = $3 AND tenant_id = $4 AND deleted_at_ms IS NULL AND ssh_host_key_pin IS NULL",
            )
            .bind(sha256)
            .bind(now)
            .bind(&id)
            .bind(&tenant)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                <Db as reports::ApplyReports>::event(
                    &mut tx, &tenant, &id, now, "ssh_host_key_pinned", &format!("sha256 {sha256}"),
                )
                .await?;
            }
            tx.commit().await?;
            Ok(n == 1)
        })
    }
}
