//! Recordings of browser terminal sessions: asciicast v2 text (a header line,
//! then one event per line), kept per tenant and device. The collector opens
//! a recording when a session starts, appends events as they happen and
//! closes it when the session ends; tenant admins replay them.
use crate::devices::DeviceId;
use crate::row_scope::RowScope;
use crate::{Store, StoreError, TenantScope, now_ms, on_pool};

/// One recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recording {
    /// Its id.
    pub id: String,
    /// The device.
    pub device: String,
    /// Who typed.
    pub username: String,
    /// The tunnel that carried it (in the audit log).
    pub tunnel_id: String,
    /// When it started (Unix ms).
    pub started_at_ms: i64,
    /// When it ended; `None` while it runs (or if the collector stopped).
    pub ended_at_ms: Option<i64>,
    /// The asciicast v2 text.
    pub cast: String,
}

type Row = (String, String, String, String, i64, Option<i64>, String);

fn recording((id, device, username, tunnel_id, started_at_ms, ended_at_ms, cast): Row) -> Recording {
    Recording {
        id,
        device,
        username,
        tunnel_id,
        started_at_ms,
        ended_at_ms,
        cast,
    }
}

impl Store {
    /// Starts a recording of a session on one of the tenant's devices, with
    /// the asciicast `header` line; answers its id.
    pub async fn start_recording(
        &self,
        scope: &TenantScope,
        device: DeviceId,
        username: &str,
        tunnel_id: &str,
        header: &str,
    ) -> Result<String, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            let n = sqlx::query(
                "INSERT INTO terminal_recordings (id, tenant_id, device_id, username, tunnel_id, started_at_ms, asciicast) \
                 SELECT $1, tenant_id, id, $2, $3, $4, $5 FROM devices WHERE id = $6 AND tenant_id = $7",
            )
            .bind(&id)
            .bind(username)
            .bind(tunnel_id)
            .bind(now_ms())
            .bind(format!("{header}\n"))
            .bind(device.to_string())
            .bind(scope.tenant().to_string())
            .execute(pool)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(format!("device {device}")));
            }
            Ok(id)
        })
    }

    /// Appends event lines (each ending in a newline) to a running recording.
    pub async fn append_recording(&self, scope: &TenantScope, id: &str, events: &str) -> Result<(), StoreError> {
        on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            let n = sqlx::query(
                "UPDATE terminal_recordings SET asciicast = asciicast || $1 \
                 WHERE id = $2 AND tenant_id = $3 AND ended_at_ms IS NULL",
            )
            .bind(events)
            .bind(id)
            .bind(scope.tenant().to_string())
            .execute(pool)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(format!("running recording {id}")));
            }
            Ok(())
        })
    }

    /// Marks a recording ended.
    pub async fn finish_recording(&self, scope: &TenantScope, id: &str) -> Result<(), StoreError> {
        on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            sqlx::query(
                "UPDATE terminal_recordings SET ended_at_ms = $1 WHERE id = $2 AND tenant_id = $3 AND ended_at_ms IS NULL",
            )
            .bind(now_ms())
            .bind(id)
            .bind(scope.tenant().to_string())
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// One of the tenant's recordings.
    pub async fn recording(&self, scope: &TenantScope, id: &str) -> Result<Recording, StoreError> {
        on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            let row: Option<Row> = sqlx::query_as(
                "SELECT id, device_id, username, tunnel_id, started_at_ms, ended_at_ms, asciicast \
                 FROM terminal_recordings WHERE id = $1 AND tenant_id = $2",
            )
            .bind(id)
            .bind(scope.tenant().to_string())
            .fetch_optional(pool)
            .await?;
            row.map(recording).ok_or_else(|| StoreError::NotFound(format!("recording {id}")))
        })
    }

    /// A device's recordings, newest first (at most `limit`).
    pub async fn device_recordings(
        &self,
        scope: &TenantScope,
        device: DeviceId,
        limit: i64,
    ) -> Result<Vec<Recording>, StoreError> {
        on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT id, device_id, username, tunnel_id, started_at_ms, ended_at_ms, asciicast \
                 FROM terminal_recordings WHERE device_id = $1 AND tenant_id = $2 \
                 ORDER BY started_at_ms DESC, id LIMIT $3",
            )
            .bind(device.to_string())
            .bind(scope.tenant().to_string())
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(recording).collect())
        })
    }
}
