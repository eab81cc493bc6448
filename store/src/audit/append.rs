//! Appending records: inside a caller's transaction ([`AppendAudit`]), or
//! alone for events that change nothing else ([`Store::record_audit`]).
use super::{AUDIT_LOCK, Actor, AuditEvent, Fields, chain_hash};
use crate::row_scope::RowScope;
use crate::{Store, StoreError, now_ms, on_pool};

/// A boxed, sendable future borrowing for `'a`.
type Boxed<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Appends records in a transaction, for either engine. Call it as the
/// transaction's last statement before commit: it takes the log's lock, held
/// until the transaction ends.
pub(crate) trait AppendAudit: sqlx::Database {
    /// Appends `events`, done by `actor`, in order; returns the last seq.
    fn append<'a, 't: 'a>(
        tx: &'a mut sqlx::Transaction<'t, Self>,
        actor: &'a Actor,
        events: &'a [AuditEvent],
    ) -> Boxed<'a, i64>;
}

macro_rules! append_impl {
    ($lock:expr) => {
        pub(super) async fn append(
            tx: &mut sqlx::Transaction<'_, DB>,
            actor: &Actor,
            events: &[AuditEvent],
        ) -> Result<i64, StoreError> {
            if let Some(lock) = $lock {
                sqlx::query(lock).bind(AUDIT_LOCK).execute(&mut **tx).await?;
            }
            let n = i64::try_from(events.len()).unwrap_or(i64::MAX);
            // A write first: on SQLite it takes the write lock (waiting for other
            // writers) before the head is read, so no other append can slip in.
            let (last, mut prev): (i64, String) =
                sqlx::query_as("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")
                    .bind(n)
                    .fetch_one(&mut **tx)
                    .await?;
            let at_ms = now_ms();
            let tenants: Vec<Option<String>> = events.iter().map(|e| e.tenant.map(|t| t.to_string())).collect();
            for (i, (event, tenant)) in events.iter().zip(&tenants).enumerate() {
                let seq = last - n + 1 + i64::try_from(i).unwrap_or(i64::MAX);
                let details = event.details.canonical();
                let fields = Fields {
                    seq,
                    at_ms,
                    tenant: tenant.as_deref(),
                    actor: &actor.name,
                    source: actor.source.as_deref(),
                    action: event.action,
                    object: &event.object,
                    outcome: event.outcome.as_str(),
                    details: &details,
                };
                let hash = chain_hash(&prev, &fields)
                    .ok_or_else(|| StoreError::Corrupt(format!("audit_head hash {prev:?}")))?;
                sqlx::query(
                    "INSERT INTO audit_log (seq, at_ms, tenant_id, actor, source, action, object, outcome, details, \
                     prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(seq)
                .bind(at_ms)
                .bind(tenant.as_deref())
                .bind(&actor.name)
                .bind(actor.source.as_deref())
                .bind(event.action)
                .bind(&event.object)
                .bind(event.outcome.as_str())
                .bind(&details)
                .bind(&prev)
                .bind(&hash)
                .execute(&mut **tx)
                .await?;
                prev = hash;
            }
            sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
                .bind(&prev)
                .execute(&mut **tx)
                .await?;
            Ok(last)
        }
    };
}

mod sqlite {
    use super::*;
    type DB = sqlx::Sqlite;
    // The write lock of the database serialises appends.
    append_impl!(None::<&'static str>);
}

mod postgres {
    use super::*;
    type DB = sqlx::Postgres;
    // Held until the transaction ends: one appender reads and moves the head at a time.
    append_impl!(Some("SELECT pg_advisory_xact_lock($1)"));
}

impl AppendAudit for sqlx::Sqlite {
    fn append<'a, 't: 'a>(
        tx: &'a mut sqlx::Transaction<'t, Self>,
        actor: &'a Actor,
        events: &'a [AuditEvent],
    ) -> Boxed<'a, i64> {
        Box::pin(sqlite::append(tx, actor, events))
    }
}

impl AppendAudit for sqlx::Postgres {
    fn append<'a, 't: 'a>(
        tx: &'a mut sqlx::Transaction<'t, Self>,
        actor: &'a Actor,
        events: &'a [AuditEvent],
    ) -> Boxed<'a, i64> {
        Box::pin(postgres::append(tx, actor, events))
    }
}

impl Store {
    /// Records an event that changes nothing else (a refused sign-in or
    /// enrollment), in a transaction of its own. Returns its seq.
    pub async fn record_audit(&self, actor: &Actor, event: AuditEvent) -> Result<i64, StoreError> {
        on_pool!(self, RowScope::All, pool, Db => {
            let mut tx = pool.begin().await?;
            let seq = <Db as AppendAudit>::append(&mut tx, actor, std::slice::from_ref(&event)).await?;
            tx.commit().await?;
            Ok(seq)
        })
    }
}
