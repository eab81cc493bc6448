//! The second wall for tenancy: PostgreSQL row-level security.
//!
//! The typed scopes ([`crate::scope`]) are the first wall: every query that
//! reads or writes one tenant's rows names the tenant in its `WHERE`. On
//! PostgreSQL the database holds a second one. Migration 0010 enables and
//! forces row-level security on every table that holds a tenant's rows, and
//! the collector's connections act as the role `outpost_app` (not the tables'
//! owner, no superuser, no `BYPASSRLS`). Each statement then sees only the
//! rows of the tenants its [`RowScope`] names, so a query that forgets its
//! tenant filter still returns nothing of another tenant, and cannot write
//! into one.
//!
//! The scope travels in two settings, `outpost.tenants` (tenant ids joined by
//! commas) and `outpost.all_tenants` (`on` for the operator's and the
//! sign-in's work across tenants). [`on_pool!`](crate::on_pool) hands each query
//! body a [`PgScoped`] executor: outside a transaction it sets both on the
//! connection it takes from the pool before every statement; a transaction it
//! begins sets them with `set_config(.., true)`, which PostgreSQL discards at
//! commit or rollback. Every use sets both, so a connection never carries one
//! caller's tenants into another's statement. Settings are plain text any
//! role may change: this wall catches a missing filter, not SQL injection
//! (which bound parameters prevent).
//!
//! SQLite has no row-level security; there the typed scopes stand alone.
use futures::TryStreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use sqlx::postgres::{PgPool, PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Either, Execute, Executor, PgConnection, Postgres, Transaction};

use super::scope::{AgentScope, TenantScope, Viewer};

/// The role the collector's PostgreSQL connections act as (migration 0010).
pub const APP_ROLE: &str = "outpost_app";

/// Run on every new connection of the pool.
pub(crate) const SET_APP_ROLE: &str = "SET ROLE outpost_app";

/// Which tenants' rows a statement may see and write on PostgreSQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RowScope {
    /// These tenants only (ids joined by commas; empty: none).
    Tenants(String),
    /// Every tenant: an [`AdminScope`](crate::AdminScope)'s work, and what
    /// runs before any tenant is known (sign-in, sessions, enrollment token
    /// redemption, the revocation list, maintenance).
    All,
}

impl RowScope {
    pub(crate) fn tenant(scope: &TenantScope) -> Self {
        Self::Tenants(scope.tenant().to_string())
    }

    pub(crate) fn agent(scope: &AgentScope) -> Self {
        Self::Tenants(scope.tenant().to_string())
    }

    pub(crate) fn viewer(viewer: &Viewer) -> Self {
        match viewer.tenant_filter() {
            None => Self::All,
            Some(list) => Self::Tenants(list),
        }
    }

    /// Sets the scope on `conn`: for the rest of its session (`local` false)
    /// or of the transaction it is in (`local` true).
    async fn apply(&self, conn: &mut PgConnection, local: bool) -> Result<(), sqlx::Error> {
        let (tenants, all) = match self {
            Self::Tenants(list) => (list.as_str(), "off"),
            Self::All => ("", "on"),
        };
        sqlx::query("SELECT set_config('outpost.tenants', $1, $3), set_config('outpost.all_tenants', $2, $3)")
            .bind(tenants)
            .bind(all)
            .bind(local)
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// The PostgreSQL pool as one [`RowScope`] sees it: an executor that sets
/// the scope on the connection before each statement, and begins
/// transactions that carry it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PgScoped<'p> {
    pool: &'p PgPool,
    scope: &'p RowScope,
}

impl<'p> PgScoped<'p> {
    pub(crate) fn new(pool: &'p PgPool, scope: &'p RowScope) -> Self {
        Self { pool, scope }
    }

    /// A transaction whose statements see the scope's rows only.
    pub(crate) async fn begin(self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        self.scope.apply(&mut tx, true).await?;
        Ok(tx)
    }
}

impl<'p> Executor<'p> for PgScoped<'p> {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        // The rows are collected while the connection is held: no store
        // query streams, and a stream that owned its connection would need a
        // self-referential type.
        Box::pin(
            futures::stream::once(async move {
                let mut conn = self.pool.acquire().await?;
                self.scope.apply(&mut conn, false).await?;
                let rows: Vec<_> = conn.fetch_many(query).try_collect().await?;
                Ok::<_, sqlx::Error>(futures::stream::iter(rows.into_iter().map(Ok)))
            })
            .try_flatten(),
        )
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        Box::pin(async move {
            let mut conn = self.pool.acquire().await?;
            self.scope.apply(&mut conn, false).await?;
            conn.fetch_optional(query).await
        })
    }

    fn prepare_with<'e>(
        self,
        sql: sqlx::SqlStr,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement, sqlx::Error>>
    where
        'p: 'e,
    {
        // Preparing reads no rows: no scope needed.
        Box::pin(async move { self.pool.acquire().await?.prepare_with(sql, parameters).await })
    }

    fn describe<'e>(self, sql: sqlx::SqlStr) -> BoxFuture<'e, Result<sqlx::Describe<Postgres>, sqlx::Error>>
    where
        'p: 'e,
    {
        Box::pin(async move { self.pool.acquire().await?.describe(sql).await })
    }
}

/// A deliberate look across tenants inside a tenant's transaction: for the
/// few checks that must know whether an id is taken by another tenant (an
/// agent's report naming another tenant's scan is refused by name, where
/// row-level security alone would hide the scan and then fail the upsert).
pub(crate) trait CrossTenant: sqlx::Database {
    /// From here to [`CrossTenant::narrow`] (or the end of the
    /// transaction), the transaction's statements see every tenant's rows.
    fn widen(conn: &mut Self::Connection) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Back to the transaction's own tenants (it must have been begun for
    /// tenants, not for all of them).
    fn narrow(conn: &mut Self::Connection) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

impl CrossTenant for sqlx::Sqlite {
    async fn widen(_: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
        Ok(())
    }
    async fn narrow(_: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

impl CrossTenant for Postgres {
    async fn widen(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT set_config('outpost.all_tenants', 'on', true)")
            .execute(conn)
            .await?;
        Ok(())
    }
    async fn narrow(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT set_config('outpost.all_tenants', 'off', true)")
            .execute(conn)
            .await?;
        Ok(())
    }
}
