//! The Outpost collector's store: SQLite by default, PostgreSQL on request.
//!
//! Both engines run the same SQL text (numbered `$n` parameters, `ON CONFLICT`,
//! `BIGINT` milliseconds, `TEXT` UUIDs): the [`on_pool!`] macro compiles each
//! query body once per engine, so a query that works on one but not the other
//! shows up in the shared store test suite rather than in production.
//!
//! Tenancy: every function that reads or writes one tenant's data takes a
//! [`TenantScope`] or [`AgentScope`], which can only be built from a verified
//! certificate or an authenticated console session (see [`scope`]). Functions
//! that span tenants take an [`AdminScope`].
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub)]

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub mod agents;
pub mod api_tokens;
pub mod audit;
pub mod devices;
pub mod health;
pub mod ingest;
pub mod inventory;
pub mod members;
pub mod metrics;
mod passwords;
pub mod row_scope;
pub mod scope;
pub mod second_factor;
pub mod tenants;
pub mod terminal_recordings;
pub mod tokens;
pub mod users;

pub use scope::{AdminScope, AgentScope, TenantScope};

/// Name of the SQLite database file inside the data directory.
pub const SQLITE_FILE: &str = "outpost.db";

/// Store errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database refused or failed a query.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// Migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A referenced object does not exist (or belongs to another tenant).
    #[error("{0} not found")]
    NotFound(String),
    /// The change contradicts what is stored (e.g. a duplicate), explained.
    #[error("{0}")]
    Conflict(String),
    /// A stored value could not be read back.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// A sealed secret could not be opened or sealed again (a vault key that
    /// is not the one it was sealed with), explained.
    #[error("{0}")]
    Vault(String),
    /// Input that cannot be stored as given, explained.
    #[error("{0}")]
    Invalid(String),
    /// The caller's role does not allow this, explained.
    #[error("permission denied: {0}")]
    Forbidden(String),
}

/// Database errors since the process started, every store counted together:
/// each becomes a [`StoreError`] through this one conversion.
static DATABASE_ERRORS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        DATABASE_ERRORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self::Database(e)
    }
}

/// How many queries the database refused or failed in this process (for
/// the `outpost_database_errors` metric).
pub fn database_errors() -> u64 {
    DATABASE_ERRORS.load(std::sync::atomic::Ordering::Relaxed)
}

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the engine's pool and `$db` naming the
/// engine's `sqlx::Database` type, once per engine. On PostgreSQL `$pool` is
/// the pool as `$scope` (a [`row_scope::RowScope`]) sees it: row-level
/// security shows its statements only that scope's tenants' rows.
macro_rules! on_pool {
    ($store:expr, $scope:expr, $pool:ident, $db:ident => $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite(p) => {
                #[allow(dead_code)]
                type $db = sqlx::Sqlite;
                let _: $crate::row_scope::RowScope = $scope;
                let $pool = p;
                $body
            }
            $crate::Pool::Postgres(p) => {
                #[allow(dead_code)]
                type $db = sqlx::Postgres;
                let scope: $crate::row_scope::RowScope = $scope;
                let $pool = $crate::row_scope::PgScoped::new(p, &scope);
                $body
            }
        }
    };
}
pub(crate) use on_pool;

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// Interned metric series ids (see [`metrics`]).
    series: std::sync::Arc<metrics::SeriesCache>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.pool {
            Pool::Sqlite(_) => "Store(sqlite)",
            Pool::Postgres(_) => "Store(postgres)",
        })
    }
}

impl Store {
    /// Opens the store: PostgreSQL when `database_url` is a `postgres://` URL,
    /// otherwise SQLite in `data_dir`. Applies migrations.
    pub async fn open(data_dir: &Path, database_url: Option<&str>) -> Result<Self, StoreError> {
        match database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Self::open_postgres(url).await
            }
            Some(url) if url.starts_with("sqlite:") => {
                let options = SqliteConnectOptions::from_str(url)?;
                Self::open_sqlite_with(options).await
            }
            Some(url) => Err(StoreError::Database(sqlx::Error::Configuration(
                format!("unsupported database URL {url:?}: use postgres://... or sqlite:...").into(),
            ))),
            None => Self::open_sqlite(&data_dir.join(SQLITE_FILE)).await,
        }
    }

    /// [`Store::open`] for the local operator: the collector's `serve` and its
    /// administrative commands, which reach the database directly and so may
    /// act for every tenant. The [`AdminScope`] comes only with the opened
    /// store; nothing that is handed a `Store` can make one.
    pub async fn open_as_operator(
        data_dir: &Path,
        database_url: Option<&str>,
    ) -> Result<(Self, AdminScope), StoreError> {
        Ok((Self::open(data_dir, database_url).await?, AdminScope::verified()))
    }

    /// Opens (creating if needed) a SQLite database file.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        Self::open_sqlite_with(SqliteConnectOptions::new().filename(path)).await
    }

    async fn open_sqlite_with(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged observation must survive a power cut, not
            // only a process crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        Ok(Self::with_pool(Pool::Sqlite(pool)))
    }

    async fn open_postgres(url: &str) -> Result<Self, StoreError> {
        // Migrations run as the URL's user, who owns the tables; everything
        // after acts as the application role, which row-level security binds
        // (see `row_scope`).
        let options = PgConnectOptions::from_str(url)?;
        let owner = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("../migrations/postgres").run(&owner).await?;
        owner.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    sqlx::query(row_scope::SET_APP_ROLE).execute(conn).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self::with_pool(Pool::Postgres(pool)))
    }

    fn with_pool(pool: Pool) -> Self {
        Self {
            pool,
            series: std::sync::Arc::new(metrics::SeriesCache::default()),
        }
    }

    /// Which engine this store runs on.
    pub fn engine(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

/// Why a PostgreSQL URL deserves a warning: it reaches a server over the
/// network without verifying who answers (`sslmode` other than `verify-full`),
/// so a man in the middle could read every tenant's data. `None` for loopback
/// and Unix sockets, and for non-PostgreSQL URLs.
pub fn postgres_tls_warning(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))?;
    let (authority_path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = authority_path.split('/').next().unwrap_or_default();
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        hostport.split(':').next().unwrap_or_default()
    };
    let mut sslmode = None;
    let mut query_host = None;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("sslmode", v)) => sslmode = Some(v.to_ascii_lowercase()),
            Some(("host", v)) => query_host = Some(v.to_owned()),
            _ => {}
        }
    }
    let host = query_host.as_deref().unwrap_or(host);
    let local = host.is_empty()
        || host.starts_with('/')
        || host.starts_with("%2F")
        || host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if local || sslmode.as_deref() == Some("verify-full") {
        return None;
    }
    Some(match sslmode.as_deref() {
        Some("verify-ca") => format!(
            "the PostgreSQL server {host} is reached with sslmode=verify-ca: its certificate chain is checked but not \
             its name; use sslmode=verify-full (with sslrootcert=...)"
        ),
        Some(mode) => format!(
            "the PostgreSQL server {host} is reached with sslmode={mode}, which does not verify the server: anyone on \
             the path can impersonate it and read every tenant's data; use sslmode=verify-full (with sslrootcert=...)"
        ),
        None => format!(
            "the PostgreSQL URL for {host} sets no sslmode, so the server is not verified (and the connection may not \
             even be encrypted): add sslmode=verify-full (with sslrootcert=...)"
        ),
    })
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn parse_id<T: FromStr>(what: &str, s: &str) -> Result<T, StoreError> {
    s.parse().map_err(|_| StoreError::Corrupt(format!("{what} id {s:?}")))
}

#[cfg(test)]
mod api_tokens_tests;
#[cfg(test)]
mod row_scope_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_members;

#[cfg(test)]
mod url_tests {
    use super::postgres_tls_warning;

    #[test]
    fn remote_postgres_must_verify_the_server() {
        for quiet in [
            "postgres://u:p@127.0.0.1:5432/db",
            "postgres://u@localhost/db",
            "postgresql://u@[::1]:5432/db",
            "postgres://u@/db?host=/run/postgresql",
            "postgres://u:p@db.example.com/db?sslmode=verify-full&sslrootcert=/etc/ca.pem",
            "sqlite:///tmp/x.db",
        ] {
            assert_eq!(postgres_tls_warning(quiet), None, "{quiet}");
        }
        for (loud, says) in [
            ("postgres://u:p@db.example.com/db", "no sslmode"),
            ("postgres://u:p@10.0.0.5:5432/db?sslmode=require", "sslmode=require"),
            ("postgres://u:p@db.example.com/db?sslmode=verify-ca", "verify-ca"),
            ("postgres://u@127.0.0.1/db?host=db.example.com", "no sslmode"),
        ] {
            let w = postgres_tls_warning(loud).unwrap_or_else(|| panic!("{loud} should warn"));
            assert!(w.contains(says) && w.contains("verify-full"), "{w}");
            assert!(!w.contains(":p@"), "no password in the warning: {w}");
        }
    }
}
