//! What `/readyz` and `/metrics` read: whether the database answers, and the
//! fleet-wide values that are gauges.
use super::agents::ONLINE_WINDOW_MS;
use super::{Store, StoreError, now_ms, on_pool};
use crate::row_scope::RowScope;

/// Gauges read from the database when metrics are scraped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Agents connected and heard from within the online window.
    pub agents_online: i64,
    /// Outbox depths of unrevoked agents, as last reported, summed.
    pub outbox_depth_sum: i64,
    /// The deepest of them.
    pub outbox_depth_max: i64,
    /// Console sessions not expired.
    pub console_sessions: i64,
}

impl Store {
    /// A trivial query: whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, RowScope::All, pool, _Db => {
            let _: (i32,) = sqlx::query_as("SELECT 1").fetch_one(pool).await?;
        });
        Ok(())
    }

    /// The gauges, in two reads. Counts, not tenant data: the caller serves
    /// them to a metrics scraper.
    pub async fn operability_gauges(&self) -> Result<Gauges, StoreError> {
        let now = now_ms();
        let (agents, sessions): ((i64, i64, i64), (i64,)) = on_pool!(self, RowScope::All, pool, _Db => {
            // The online rule of `agents.rs`: connected, not revoked, heard from recently.
            let agents = sqlx::query_as(
                "SELECT \
                 CAST(COALESCE(SUM(CASE WHEN connected_since_ms IS NOT NULL AND last_seen_ms > $1 THEN 1 ELSE 0 END), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(outbox_depth), 0) AS BIGINT), CAST(COALESCE(MAX(outbox_depth), 0) AS BIGINT) \
                 FROM agents WHERE revoked_at_ms IS NULL",
            )
            .bind(now - ONLINE_WINDOW_MS)
            .fetch_one(pool)
            .await?;
            let sessions = sqlx::query_as("SELECT COUNT(*) FROM sessions WHERE expires_at_ms > $1")
                .bind(now)
                .fetch_one(pool)
                .await?;
            (agents, sessions)
        });
        Ok(Gauges {
            agents_online: agents.0,
            outbox_depth_sum: agents.1,
            outbox_depth_max: agents.2,
            console_sessions: sessions.0,
        })
    }
}
