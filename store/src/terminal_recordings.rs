//! Recordings of browser terminal sessions: asciicast v2 text (a header line,
//! then one event per line), kept per tenant and device. The collector opens
//! a recording when a session starts, appends events in chunks as they
//! happen and closes it when the session ends; tenant admins replay them.
//!
//! The header lives in the recording's row and the events in numbered
//! chunks beside it, so appending costs the chunk, not a rewrite of all that
//! came before; the row keeps the running size for the recorder's cap.
use crate::devices::DeviceId;
use crate::row_scope::RowScope;
use crate::{Store, StoreError, TenantScope, now_ms, on_pool};

/// What is known of a recording without reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingInfo {
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
    /// Its length in bytes, header included.
    pub size_bytes: i64,
}

/// One recording, with its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recording {
    /// Who, when, how long.
    pub info: RecordingInfo,
    /// The asciicast v2 text.
    pub cast: String,
}

type InfoRow = (String, String, String, String, i64, Option<i64>, i64);
/// The info columns and the header.
type HeaderRow = (String, String, String, String, i64, Option<i64>, i64, String);

fn info((id, device, username, tunnel_id, started_at_ms, ended_at_ms, size_bytes): InfoRow) -> RecordingInfo {
    RecordingInfo {
        id,
        device,
        username,
        tunnel_id,
        started_at_ms,
        ended_at_ms,
        size_bytes,
    }
}

fn len(text: &str) -> i64 {
    i64::try_from(text.len()).unwrap_or(i64::MAX)
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
        let header = format!("{header}\n");
        on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            let n = sqlx::query(
                "INSERT INTO terminal_recordings \
                 (id, tenant_id, device_id, username, tunnel_id, started_at_ms, asciicast, size_bytes) \
                 SELECT $1, tenant_id, id, $2, $3, $4, $5, $6 FROM devices WHERE id = $7 AND tenant_id = $8",
            )
            .bind(&id)
            .bind(username)
            .bind(tunnel_id)
            .bind(now_ms())
            .bind(&header)
            .bind(len(&header))
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

    /// Appends event lines (each ending in a newline) to a running
    /// recording; answers its size after them.
    pub async fn append_recording(&self, scope: &TenantScope, id: &str, events: &str) -> Result<i64, StoreError> {
        let tenant = scope.tenant().to_string();
        on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            let mut tx = pool.begin().await?;
            let size: Option<(i64,)> = sqlx::query_as(
                "UPDATE terminal_recordings SET size_bytes = size_bytes + $1 \
                 WHERE id = $2 AND tenant_id = $3 AND ended_at_ms IS NULL RETURNING size_bytes",
            )
            .bind(len(events))
            .bind(id)
            .bind(&tenant)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((size,)) = size else {
                return Err(StoreError::NotFound(format!("running recording {id}")));
            };
            sqlx::query(
                "INSERT INTO terminal_recording_chunks (recording_id, seq, tenant_id, events) \
                 SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3 FROM terminal_recording_chunks WHERE recording_id = $1",
            )
            .bind(id)
            .bind(&tenant)
            .bind(events)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(size)
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

    /// One of the tenant's recordings, with its text.
    pub async fn recording(&self, scope: &TenantScope, id: &str) -> Result<Recording, StoreError> {
        let tenant = scope.tenant().to_string();
        on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            let mut tx = pool.begin().await?;
            let row: Option<HeaderRow> = sqlx::query_as(
                "SELECT id, device_id, username, tunnel_id, started_at_ms, ended_at_ms, size_bytes, asciicast \
                 FROM terminal_recordings WHERE id = $1 AND tenant_id = $2",
            )
            .bind(id)
            .bind(&tenant)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((rid, device, username, tunnel_id, started, ended, size, header)) = row else {
                return Err(StoreError::NotFound(format!("recording {id}")));
            };
            let chunks: Vec<(String,)> = sqlx::query_as(
                "SELECT events FROM terminal_recording_chunks WHERE recording_id = $1 AND tenant_id = $2 ORDER BY seq",
            )
            .bind(id)
            .bind(&tenant)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            let mut cast = header;
            cast.reserve(usize::try_from(size).unwrap_or(0).saturating_sub(cast.len()));
            for (events,) in chunks {
                cast.push_str(&events);
            }
            Ok(Recording {
                info: info((rid, device, username, tunnel_id, started, ended, size)),
                cast,
            })
        })
    }

    /// What is known of one of the tenant's recordings, without its text.
    pub async fn recording_info(&self, scope: &TenantScope, id: &str) -> Result<RecordingInfo, StoreError> {
        on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            let row: Option<InfoRow> = sqlx::query_as(
                "SELECT id, device_id, username, tunnel_id, started_at_ms, ended_at_ms, size_bytes \
                 FROM terminal_recordings WHERE id = $1 AND tenant_id = $2",
            )
            .bind(id)
            .bind(scope.tenant().to_string())
            .fetch_optional(pool)
            .await?;
            row.map(info).ok_or_else(|| StoreError::NotFound(format!("recording {id}")))
        })
    }

    /// A device's recordings, newest first (at most `limit`), without their text.
    pub async fn device_recordings(
        &self,
        scope: &TenantScope,
        device: DeviceId,
        limit: i64,
    ) -> Result<Vec<RecordingInfo>, StoreError> {
        on_pool!(self, RowScope::tenant(scope), pool, _Db => {
            let rows: Vec<InfoRow> = sqlx::query_as(
                "SELECT id, device_id, username, tunnel_id, started_at_ms, ended_at_ms, size_bytes \
                 FROM terminal_recordings WHERE device_id = $1 AND tenant_id = $2 \
                 ORDER BY started_at_ms DESC, id LIMIT $3",
            )
            .bind(device.to_string())
            .bind(scope.tenant().to_string())
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(info).collect())
        })
    }
}
