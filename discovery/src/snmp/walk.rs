//! Reading a table column with GETBULK, bounded in rows and requests.

use super::error::SnmpError;
use super::session::Session;
use super::value::{ObjectId, Value};

/// A column's rows: the index arcs after the column OID, and the value.
pub(crate) type Rows = Vec<(Vec<u64>, Value)>;

/// Reads every row of `column` (at most `max_rows`), asking for
/// `max_repetitions` rows per GETBULK.
///
/// Stops at the first OID outside the column or at endOfMibView. An agent
/// whose OIDs do not increase would walk forever; that is an error. A
/// column longer than `max_rows` is cut there, with a warning.
pub(crate) async fn column(
    session: &mut Session,
    target: std::net::SocketAddr,
    column: &ObjectId,
    max_rows: usize,
    max_repetitions: u32,
) -> Result<Rows, SnmpError> {
    let mut rows = Vec::new();
    let mut last = column.clone();
    // Every request that does not end the walk adds at least one row.
    while rows.len() < max_rows {
        let varbinds = session
            .get_bulk(std::slice::from_ref(&last), max_repetitions.max(1))
            .await?;
        if varbinds.is_empty() {
            return Ok(rows);
        }
        for varbind in varbinds {
            if varbind.value == Value::EndOfMibView {
                return Ok(rows);
            }
            let Some(index) = varbind.oid.strip_prefix(column) else {
                return Ok(rows);
            };
            if varbind.oid <= last {
                return Err(SnmpError::Malformed {
                    target,
                    detail: format!("walking {column}, the agent went back from {last} to {}", varbind.oid),
                });
            }
            rows.push((index.to_vec(), varbind.value.clone()));
            last = varbind.oid;
            if rows.len() >= max_rows {
                tracing::warn!(%target, %column, max_rows, "SNMP table column cut at the row limit");
                return Ok(rows);
            }
        }
    }
    Ok(rows)
}
