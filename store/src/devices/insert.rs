//! Adding one device inside a caller's transaction: the path every single
//! device takes into the store, whether an operator added it
//! ([`Store::add_device`](crate::Store::add_device)) or it was adopted from
//! the inventory ([`Store::adopt_host`](crate::Store::adopt_host)).
use super::NewDevice;
use super::reports::ApplyReports;
use crate::StoreError;

macro_rules! insert_impl {
    () => {
/// Checks the site and the address, inserts the device (given to a connected
/// agent of its site, if any) and records its `added` event.
pub(super) async fn insert(
    tx: &mut sqlx::Transaction<'_, DB>,
    tenant: &str,
    device: &NewDevice,
    now: i64,
) -> Result<(), StoreError> {
    let site: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM sites WHERE id = $1 AND tenant_id = $2 AND deleted_at_ms IS NULL",
    )
    .bind(device.site.to_string())
    .bind(tenant)
    .fetch_optional(&mut **tx)
    .await?;
    if site.is_none() {
        return Err(StoreError::NotFound(format!("site {}", device.site)));
    }
    let taken: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM devices WHERE site_id = $1 AND address = $2 AND api_port = $3 AND deleted_at_ms IS NULL",
    )
    .bind(device.site.to_string())
    .bind(&device.address)
    .bind(i64::from(device.api_port))
    .fetch_optional(&mut **tx)
    .await?;
    if let Some((id,)) = taken {
        return Err(StoreError::Conflict(format!(
            "the site already has device {id} at {}:{}",
            device.address, device.api_port
        )));
    }
    sqlx::query(
        "INSERT INTO devices (id, tenant_id, site_id, address, api_port, api_tls, ssh_port, username, \
         password_sealed, poll_interval_secs, created_at_ms, updated_at_ms, state_since_ms, agent_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $11, \
         (SELECT id FROM agents WHERE site_id = $3 AND connected_since_ms IS NOT NULL AND revoked_at_ms IS NULL \
          ORDER BY connected_since_ms, id LIMIT 1))",
    )
    .bind(device.id.to_string())
    .bind(tenant)
    .bind(device.site.to_string())
    .bind(&device.address)
    .bind(i64::from(device.api_port))
    .bind(i64::from(device.api_tls))
    .bind(i64::from(device.ssh_port))
    .bind(&device.username)
    .bind(&device.password_sealed)
    .bind(i64::from(device.poll_interval_secs))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let detail = format!("{}:{}", device.address, device.api_port);
    <DB as ApplyReports>::event(tx, tenant, &device.id.to_string(), now, "added", &detail).await
}
    };
}

mod sqlite {
    use super::*;
    type DB = sqlx::Sqlite;
    insert_impl!();
}

mod postgres {
    use super::*;
    type DB = sqlx::Postgres;
    insert_impl!();
}

/// A boxed, sendable future borrowing for `'a`.
type Boxed<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Adds one device in a transaction, for either engine.
pub(crate) trait InsertDevice: sqlx::Database {
    /// Adds `device` to a live site of `tenant` at `now`: `NotFound` for a
    /// site that is not one, `Conflict` when the site has a device at that
    /// address and port.
    fn insert<'a, 't: 'a>(
        tx: &'a mut sqlx::Transaction<'t, Self>,
        tenant: &'a str,
        device: &'a NewDevice,
        now: i64,
    ) -> Boxed<'a, ()>;
}

impl InsertDevice for sqlx::Sqlite {
    fn insert<'a, 't: 'a>(
        tx: &'a mut sqlx::Transaction<'t, Self>,
        tenant: &'a str,
        device: &'a NewDevice,
        now: i64,
    ) -> Boxed<'a, ()> {
        Box::pin(sqlite::insert(tx, tenant, device, now))
    }
}

impl InsertDevice for sqlx::Postgres {
    fn insert<'a, 't: 'a>(
        tx: &'a mut sqlx::Transaction<'t, Self>,
        tenant: &'a str,
        device: &'a NewDevice,
        now: i64,
    ) -> Boxed<'a, ()> {
        Box::pin(postgres::insert(tx, tenant, device, now))
    }
}
