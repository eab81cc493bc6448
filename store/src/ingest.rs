//! Idempotent ingest of one batch of observations.
//!
//! A batch is written in one transaction together with the agent's new
//! `acked_seq`; the collector acknowledges only after that commit. Rows are keyed
//! by (agent, seq) and inserted with `ON CONFLICT DO NOTHING`, so a batch resent
//! after a lost acknowledgement never duplicates anything.
//!
//! A resend carries the same payload. When a row that already exists differs
//! from the one resent under its (agent, seq) — two machines sharing one agent
//! identity, or an outbox restored from an old copy — the stored row is kept,
//! and the conflict is counted on the agent (`seq_conflicts`) and logged, never
//! silent. The comparison only runs for statements that inserted fewer rows
//! than they carried, so the normal path pays nothing for it.
use super::{AgentScope, Store, StoreError, now_ms, on_pool};
use crate::row_scope::RowScope;

/// Rows per INSERT statement: below SQLite's and PostgreSQL's bind-parameter limits.
const ROWS_PER_STATEMENT: usize = 2_000;

/// A metric sample ready to store.
#[derive(Clone, Debug)]
pub struct MetricRow {
    /// Sequence number.
    pub seq: i64,
    /// Agent clock, Unix ms.
    pub observed_at_ms: i64,
    /// Metric name.
    pub name: String,
    /// Subject (device, interface), may be empty.
    pub subject: String,
    /// Value.
    pub value: f64,
}

/// Host facts ready to store.
#[derive(Clone, Debug)]
pub struct HostFactsRow {
    /// Sequence number.
    pub seq: i64,
    /// Agent clock, Unix ms.
    pub observed_at_ms: i64,
    /// Host name.
    pub hostname: String,
    /// OS family.
    pub os: String,
    /// OS version.
    pub os_version: String,
    /// Kernel version.
    pub kernel: String,
    /// CPU architecture.
    pub arch: String,
    /// Addresses, comma-separated.
    pub addresses: String,
    /// Agent version.
    pub agent_version: String,
    /// Outbox depth when observed.
    pub outbox_depth: i64,
    /// Host uptime.
    pub uptime_seconds: i64,
}

/// One batch, validated.
#[derive(Clone, Debug, Default)]
pub struct IngestBatch {
    /// Metric samples.
    pub metrics: Vec<MetricRow>,
    /// Host facts.
    pub host_facts: Vec<HostFactsRow>,
    /// Reports about RouterOS devices.
    pub devices: Vec<crate::devices::reports::DeviceReport>,
    /// Discovery reports, reconciled into the inventory.
    pub discovery: Vec<crate::inventory::records::DiscoveryReport>,
    /// Highest sequence number the batch covers (including rejected ones).
    pub through_seq: i64,
    /// The agent's outbox depth when it cut the batch.
    pub outbox_depth: i64,
}

impl IngestBatch {
    /// How many observations the batch carries.
    pub fn observations(&self) -> usize {
        self.metrics.len() + self.host_facts.len() + self.devices.len() + self.discovery.len()
    }
}

/// What a committed batch did.
#[derive(Debug)]
pub struct IngestOutcome {
    /// Rows newly written.
    pub inserted: u64,
    /// The agent's committed high-water mark after this batch.
    pub acked_seq: i64,
    /// Rows already stored under the same sequence number with another payload.
    pub conflicts: u64,
    /// What became of the device reports.
    pub devices: crate::devices::reports::DeviceOutcome,
    /// What became of the discovery reports.
    pub discovery: crate::inventory::DiscoveryOutcome,
}

/// Stored metric columns compared on a resend.
type StoredMetric = (i64, i64, String, String, f64);
/// Stored host-facts columns compared on a resend.
type StoredFacts = (String, String, String, String, String, String, String, i64);

fn same_metric(m: &MetricRow, stored: &StoredMetric) -> bool {
    let (_, at, name, subject, value) = stored;
    m.observed_at_ms == *at && m.name == *name && m.subject == *subject && m.value.to_bits() == value.to_bits()
}

fn same_facts(f: &HostFactsRow, stored: &StoredFacts) -> bool {
    let (hostname, os, os_version, kernel, arch, addresses, agent_version, at) = stored;
    (
        &f.hostname,
        &f.os,
        &f.os_version,
        &f.kernel,
        &f.arch,
        &f.addresses,
        &f.agent_version,
        f.observed_at_ms,
    ) == (hostname, os, os_version, kernel, arch, addresses, agent_version, *at)
}

impl Store {
    /// Writes a batch for the agent in one transaction.
    pub async fn ingest(&self, scope: &AgentScope, batch: &IngestBatch) -> Result<IngestOutcome, StoreError> {
        let agent = scope.agent().to_string();
        let tenant = scope.tenant().to_string();
        let now = now_ms();
        on_pool!(self, RowScope::agent(scope), pool, Db => {
            let mut tx = pool.begin().await?;
            // Locks the agent's row first (and takes SQLite's write lock), so
            // one agent's batches are stored one at a time and `acked_before`
            // is what every earlier batch committed.
            let (acked_before,): (i64,) = sqlx::query_as(
                "UPDATE agents SET last_seen_ms = $1 WHERE id = $2 AND tenant_id = $3 RETURNING acked_seq",
            )
            .bind(now)
            .bind(&agent)
            .bind(&tenant)
            .fetch_one(&mut *tx)
            .await?;
            let mut writer = self.sample_writer();
            let devices = <Db as crate::devices::reports::ApplyReports>::apply(
                &mut tx,
                &mut writer,
                &tenant,
                &scope.site().to_string(),
                acked_before,
                &batch.devices,
            )
            .await?;
            let site = scope.site().to_string();
            let from = crate::inventory::Reporter { tenant: &tenant, site: &site, agent: &agent };
            let discovery =
                <Db as crate::inventory::ApplyDiscovery>::apply(&mut tx, from, acked_before, &batch.discovery).await?;
            let mut inserted = devices.stored + discovery.stored;
            let mut conflicts = 0u64;
            for chunk in batch.metrics.chunks(ROWS_PER_STATEMENT) {
                let mut qb = sqlx::QueryBuilder::<Db>::new(
                    "INSERT INTO metric_samples (agent_id, seq, tenant_id, observed_at_ms, name, subject, value) ",
                );
                qb.push_values(chunk, |mut b, m| {
                    b.push_bind(&agent)
                        .push_bind(m.seq)
                        .push_bind(&tenant)
                        .push_bind(m.observed_at_ms)
                        .push_bind(&m.name)
                        .push_bind(&m.subject)
                        .push_bind(m.value);
                });
                qb.push(" ON CONFLICT (agent_id, seq) DO NOTHING");
                let n = qb.build().execute(&mut *tx).await?.rows_affected();
                inserted += n;
                if n < chunk.len() as u64 {
                    let (lo, hi) = chunk.iter().fold((i64::MAX, i64::MIN), |(lo, hi), m| (lo.min(m.seq), hi.max(m.seq)));
                    let stored: Vec<StoredMetric> = sqlx::query_as(
                        "SELECT seq, observed_at_ms, name, subject, value FROM metric_samples \
                         WHERE agent_id = $1 AND seq BETWEEN $2 AND $3",
                    )
                    .bind(&agent)
                    .bind(lo)
                    .bind(hi)
                    .fetch_all(&mut *tx)
                    .await?;
                    let stored: std::collections::HashMap<i64, StoredMetric> =
                        stored.into_iter().map(|r| (r.0, r)).collect();
                    conflicts += chunk
                        .iter()
                        .filter(|m| stored.get(&m.seq).is_some_and(|r| !same_metric(m, r)))
                        .count() as u64;
                }
            }
            for f in &batch.host_facts {
                let n = sqlx::query(
                    "INSERT INTO host_facts (agent_id, seq, tenant_id, observed_at_ms, hostname, os, os_version, kernel, arch, \
                     addresses, agent_version, outbox_depth, uptime_seconds) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (agent_id, seq) DO NOTHING",
                )
                .bind(&agent)
                .bind(f.seq)
                .bind(&tenant)
                .bind(f.observed_at_ms)
                .bind(&f.hostname)
                .bind(&f.os)
                .bind(&f.os_version)
                .bind(&f.kernel)
                .bind(&f.arch)
                .bind(&f.addresses)
                .bind(&f.agent_version)
                .bind(f.outbox_depth)
                .bind(f.uptime_seconds)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 0 {
                    let stored: Option<StoredFacts> = sqlx::query_as(
                        "SELECT hostname, os, os_version, kernel, arch, addresses, agent_version, observed_at_ms \
                         FROM host_facts WHERE agent_id = $1 AND seq = $2",
                    )
                    .bind(&agent)
                    .bind(f.seq)
                    .fetch_optional(&mut *tx)
                    .await?;
                    conflicts += u64::from(stored.is_some_and(|r| !same_facts(f, &r)));
                }
                inserted += n;
            }
            if conflicts > 0 {
                sqlx::query("UPDATE agents SET seq_conflicts = seq_conflicts + $1 WHERE id = $2 AND tenant_id = $3")
                    .bind(i64::try_from(conflicts).unwrap_or(i64::MAX))
                    .bind(&agent)
                    .bind(&tenant)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(latest) = batch.host_facts.iter().max_by_key(|f| f.seq) {
                sqlx::query(
                    "UPDATE agents SET hostname = $1, os = $2, addresses = $3, version = $4 \
                     WHERE id = $5 AND tenant_id = $6",
                )
                .bind(&latest.hostname)
                .bind(format!("{} {}", latest.os, latest.os_version).trim().to_owned())
                .bind(&latest.addresses)
                .bind(&latest.agent_version)
                .bind(&agent)
                .bind(&tenant)
                .execute(&mut *tx)
                .await?;
            }
            let (acked_seq,): (i64,) = sqlx::query_as(
                "UPDATE agents SET acked_seq = CASE WHEN acked_seq < $1 THEN $1 ELSE acked_seq END, \
                 last_seen_ms = $2, outbox_depth = $3 WHERE id = $4 AND tenant_id = $5 RETURNING acked_seq",
            )
            .bind(batch.through_seq)
            .bind(now)
            .bind(batch.outbox_depth)
            .bind(&agent)
            .bind(&tenant)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            writer.committed();
            if conflicts > 0 {
                tracing::warn!(
                    %agent,
                    tenant = %tenant,
                    conflicts,
                    "resent observations differ from what is stored under the same sequence numbers \
                     (two machines with one agent identity, or an outbox restored from an old copy); stored rows kept"
                );
            }
            Ok(IngestOutcome { inserted, acked_seq, conflicts, devices, discovery })
        })
    }
}
