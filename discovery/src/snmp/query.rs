//! One host, queried completely: system group, interfaces, LLDP neighbours.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::credentials::Credentials;
use super::error::SnmpError;
use super::info::{Incomplete, SnmpInfo};
use super::session::Session;
use super::tables::{self, IfField, LldpField};
use super::{system, walk};

/// Limits of one query.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueryOptions {
    /// Longest wait for one request's answer, retries included.
    pub timeout: Duration,
    /// Requests re-sent after a timeout (each attempt waits
    /// `timeout / (retries + 1)`).
    pub retries: u32,
    /// Most rows read per table column.
    pub max_rows: usize,
    /// Rows asked for per GETBULK.
    pub max_repetitions: u32,
}

impl Default for QueryOptions {
    /// 2 s per request over 3 attempts, 4096 rows per column, 25 per request.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(2),
            retries: 2,
            max_rows: 4096,
            max_repetitions: 25,
        }
    }
}

impl QueryOptions {
    /// The defaults with another per-request `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self {
            timeout,
            ..Self::default()
        }
    }
}

/// Queries the agent at `addr:port` with [`QueryOptions::with_timeout`].
///
/// Fails only if the system group cannot be read: that is where wrong
/// credentials and silent hosts show. Tables that fail later are listed in
/// [`SnmpInfo::incomplete`] with what they yielded kept.
///
/// Every request is bounded by `timeout`, so a silent host fails after
/// about `timeout`, and a whole query takes at most `timeout` times the
/// number of requests (bounded by the row limit); once the agent stops
/// answering, the remaining tables are not tried.
pub async fn query_host(
    addr: IpAddr,
    port: u16,
    creds: &Credentials,
    timeout: Duration,
) -> Result<SnmpInfo, SnmpError> {
    query_host_with(addr, port, creds, &QueryOptions::with_timeout(timeout)).await
}

/// [`query_host`] with all limits chosen by the caller.
pub async fn query_host_with(
    addr: IpAddr,
    port: u16,
    creds: &Credentials,
    options: &QueryOptions,
) -> Result<SnmpInfo, SnmpError> {
    creds.validate()?;
    let target = SocketAddr::new(addr, port);
    let mut session = Session::new(target, creds, options.timeout, options.retries);
    let mut info = system::parse(&session.get(&system::oids()).await?);
    let mut gone = false;

    let mut if_columns = Vec::new();
    for field in IfField::ALL {
        if let Some(rows) = read_column(
            &mut session,
            target,
            options,
            &field.oid(),
            field.table(),
            &mut info,
            &mut gone,
        )
        .await
        {
            if_columns.push((field, rows));
        }
    }
    info.interfaces = tables::interfaces(&if_columns);

    let mut lldp_columns = Vec::new();
    for field in LldpField::ALL {
        if let Some(rows) = read_column(
            &mut session,
            target,
            options,
            &field.oid(),
            "lldpRemTable",
            &mut info,
            &mut gone,
        )
        .await
        {
            lldp_columns.push((field, rows));
        }
    }
    info.lldp_neighbours = tables::lldp_neighbours(&lldp_columns);

    tracing::debug!(
        %target,
        sys_name = info.sys_name.as_deref().unwrap_or(""),
        interfaces = info.interfaces.len(),
        lldp_neighbours = info.lldp_neighbours.len(),
        incomplete = info.incomplete.len(),
        "SNMP query done"
    );
    Ok(info)
}

/// Walks one column; on failure records the table as incomplete (once)
/// and returns `None`. After a timeout or ICMP error (`gone`) nothing more
/// is sent: the other columns would only wait out their timeouts too.
async fn read_column(
    session: &mut Session,
    target: SocketAddr,
    options: &QueryOptions,
    column: &super::value::ObjectId,
    table: &'static str,
    info: &mut SnmpInfo,
    gone: &mut bool,
) -> Option<walk::Rows> {
    let result = if *gone {
        Err(SnmpError::Timeout {
            target,
            waited: Duration::ZERO,
            attempts: 0,
            hint: "not tried: the agent stopped answering earlier in this query",
        })
    } else {
        walk::column(session, target, column, options.max_rows, options.max_repetitions).await
    };
    match result {
        Ok(rows) => Some(rows),
        Err(error) => {
            *gone |= matches!(error, SnmpError::Timeout { .. } | SnmpError::Unreachable { .. });
            if !info.incomplete.iter().any(|i| i.table == table) {
                tracing::info!(%target, table, %error, "SNMP table not read completely");
                info.incomplete.push(Incomplete { table, error });
            }
            None
        }
    }
}
