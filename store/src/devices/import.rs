//! Adding many devices at once (`outpost-collector device import`): one
//! transaction, multi-row INSERTs, devices already present skipped.
use std::collections::{HashMap, HashSet};

use super::{DeviceId, NewDevice};
use crate::audit::{Actor, AppendAudit, AuditEvent};
use crate::row_scope::RowScope;
use crate::scope::TenantScope;
use crate::{Store, StoreError, now_ms, on_pool};

/// Devices per INSERT statement (14 bound values each: well inside both
/// engines' limits on bound parameters).
const ROWS_PER_STATEMENT: usize = 500;

/// What [`Store::add_devices`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    /// Ids of the devices added, in input order.
    pub added: Vec<DeviceId>,
    /// Positions (in the input) of devices skipped because their site
    /// already has a device at that address and port (or an earlier device
    /// of the same input has them).
    pub skipped: Vec<usize>,
}

impl Store {
    /// Adds `devices` to live sites of the scope's tenant in one
    /// transaction: all of them or, on an error, none. A device whose site
    /// already has a device at the same address and API port is skipped
    /// (see [`ImportOutcome::skipped`]). Fails with `NotFound` when a site is
    /// not one of the tenant's live sites. Each added device gets an `added`
    /// event and a `device.add` audit record (in the same transaction), as with
    /// [`Store::add_device`].
    pub async fn add_devices(
        &self,
        scope: &TenantScope,
        devices: &[NewDevice],
        actor: &Actor,
    ) -> Result<ImportOutcome, StoreError> {
        let now = now_ms();
        let tenant = scope.tenant().to_string();
        let mut sites: Vec<String> = devices.iter().map(|d| d.site.to_string()).collect();
        sites.sort_unstable();
        sites.dedup();
        on_pool!(self, RowScope::tenant(scope), pool, Db => {
            let mut tx = pool.begin().await?;
            // Write first: on SQLite a transaction that reads before it
            // writes fails with "database is locked" (no wait) when another
            // writer committed in between; a write takes the lock, waiting.
            sqlx::query("UPDATE tenants SET name = name WHERE id = $1")
                .bind(&tenant)
                .execute(&mut *tx)
                .await?;
            // Per site: the agent new devices go to, and what is there already.
            let mut agent_of: HashMap<String, Option<String>> = HashMap::new();
            let mut taken: HashSet<(String, String, i64)> = HashSet::new();
            for site in &sites {
                let live: Option<(String,)> = sqlx::query_as(
                    "SELECT id FROM sites WHERE id = $1 AND tenant_id = $2 AND deleted_at_ms IS NULL",
                )
                .bind(site)
                .bind(&tenant)
                .fetch_optional(&mut *tx)
                .await?;
                if live.is_none() {
                    return Err(StoreError::NotFound(format!("site {site}")));
                }
                let agent: Option<(String,)> = sqlx::query_as(
                    "SELECT id FROM agents WHERE site_id = $1 AND connected_since_ms IS NOT NULL \
                     AND revoked_at_ms IS NULL ORDER BY connected_since_ms, id LIMIT 1",
                )
                .bind(site)
                .fetch_optional(&mut *tx)
                .await?;
                agent_of.insert(site.clone(), agent.map(|(a,)| a));
                let present: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT address, api_port FROM devices WHERE site_id = $1 AND tenant_id = $2 AND deleted_at_ms IS NULL",
                )
                .bind(site)
                .bind(&tenant)
                .fetch_all(&mut *tx)
                .await?;
                taken.extend(present.into_iter().map(|(address, port)| (site.clone(), address, port)));
            }

            let mut outcome = ImportOutcome::default();
            let mut fresh: Vec<&NewDevice> = Vec::with_capacity(devices.len());
            for (n, d) in devices.iter().enumerate() {
                if taken.insert((d.site.to_string(), d.address.clone(), i64::from(d.api_port))) {
                    fresh.push(d);
                    outcome.added.push(d.id);
                } else {
                    outcome.skipped.push(n);
                }
            }

            for chunk in fresh.chunks(ROWS_PER_STATEMENT) {
                let mut qb = sqlx::QueryBuilder::<Db>::new(
                    "INSERT INTO devices (id, tenant_id, site_id, address, api_port, api_tls, ssh_port, username, \
                     password_sealed, poll_interval_secs, created_at_ms, updated_at_ms, state_since_ms, agent_id) ",
                );
                qb.push_values(chunk, |mut b, d| {
                    let site = d.site.to_string();
                    let agent = agent_of.get(&site).cloned().flatten();
                    b.push_bind(d.id.to_string())
                        .push_bind(&tenant)
                        .push_bind(site)
                        .push_bind(&d.address)
                        .push_bind(i64::from(d.api_port))
                        .push_bind(i64::from(d.api_tls))
                        .push_bind(i64::from(d.ssh_port))
                        .push_bind(&d.username)
                        .push_bind(&d.password_sealed)
                        .push_bind(i64::from(d.poll_interval_secs))
                        .push_bind(now)
                        .push_bind(now)
                        .push_bind(now)
                        .push_bind(agent);
                });
                qb.build().execute(&mut *tx).await?;

                let mut qb = sqlx::QueryBuilder::<Db>::new(
                    "INSERT INTO device_events (tenant_id, device_id, at_ms, kind, detail) ",
                );
                qb.push_values(chunk, |mut b, d| {
                    b.push_bind(&tenant)
                        .push_bind(d.id.to_string())
                        .push_bind(now)
                        .push_bind("added")
                        .push_bind(format!("{}:{}", d.address, d.api_port));
                });
                qb.build().execute(&mut *tx).await?;
            }
            let events: Vec<AuditEvent> = fresh
                .iter()
                .map(|d| super::added_event(scope, d).with_detail("via", "import"))
                .collect();
            <Db as AppendAudit>::append(&mut tx, actor, &events).await?;
            tx.commit().await?;
            Ok(outcome)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AdminScope;

    fn device(site: outpost_certs::SiteId, address: &str, port: u16) -> NewDevice {
        NewDevice {
            id: DeviceId::random(),
            site,
            address: address.to_owned(),
            api_port: port,
            api_tls: port == 8729,
            ssh_port: 22,
            username: "admin".into(),
            password_sealed: vec![1, 2, 3],
            poll_interval_secs: 60,
        }
    }

    async fn devices_of(store: &Store, tenant: &str) -> (i64, i64) {
        on_pool!(store, RowScope::All, pool, _Db => {
            let (d,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM devices WHERE tenant_id = $1 AND deleted_at_ms IS NULL")
                .bind(tenant).fetch_one(pool).await.expect("count");
            let (e,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM device_events WHERE tenant_id = $1 AND kind = 'added'")
                .bind(tenant).fetch_one(pool).await.expect("count");
            (d, e)
        })
    }

    #[tokio::test]
    async fn imports_in_batches_skip_what_is_there_and_add_nothing_on_error() {
        let e = crate::tests::engines().await;
        for store in &e.stores {
            let admin = AdminScope::verified();
            let hq = store.ensure_site(&admin, "acme", "hq").await.expect("site");
            let other = store.ensure_site(&admin, "globex", "plant").await.expect("site");
            let scope = admin.tenant_scope(hq.tenant);
            let tenant = hq.tenant.to_string();
            store
                .add_device(
                    &scope,
                    &device(hq.site, "10.0.0.1", 8728),
                    &crate::audit::Actor::local_operator(),
                )
                .await
                .expect("one device");

            // More rows than one statement takes; one already present, one
            // twice in the input, one on another port of the same address.
            let mut batch: Vec<NewDevice> = (0..1_200)
                .map(|i| device(hq.site, &format!("10.0.{}.{}", i / 250, i % 250 + 1), 8728))
                .collect();
            batch.push(device(hq.site, "10.0.0.2", 8728));
            batch.push(device(hq.site, "10.0.0.2", 8729));
            let outcome = store
                .add_devices(&scope, &batch, &crate::audit::Actor::local_operator())
                .await
                .expect("import");
            assert_eq!(outcome.skipped, vec![0, 1_200], "{store:?}");
            assert_eq!(outcome.added.len(), 1_200);
            assert_eq!(outcome.added[0], batch[1].id);
            assert_eq!(devices_of(store, &tenant).await, (1_201, 1_201));

            // The same file again adds nothing.
            let again: Vec<NewDevice> = batch.iter().map(|d| device(d.site, &d.address, d.api_port)).collect();
            let outcome = store
                .add_devices(&scope, &again, &crate::audit::Actor::local_operator())
                .await
                .expect("import again");
            assert!(outcome.added.is_empty());
            assert_eq!(outcome.skipped.len(), again.len());

            // A site of another tenant: not found, and nothing of the batch is added.
            let mixed = vec![device(hq.site, "10.9.0.1", 8728), device(other.site, "10.9.0.2", 8728)];
            let err = store
                .add_devices(&scope, &mixed, &crate::audit::Actor::local_operator())
                .await
                .expect_err("other tenant's site");
            assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
            assert_eq!(devices_of(store, &tenant).await, (1_201, 1_201));
            assert_eq!(devices_of(store, &other.tenant.to_string()).await, (0, 0));

            // Imported devices are assigned like added ones.
            let listed = store
                .list_devices(&crate::scope::Viewer::Admin(admin))
                .await
                .expect("list");
            assert_eq!(listed.len(), 1_201);
        }
    }
}
