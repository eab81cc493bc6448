//! The `audit` sub-commands: `verify` walks the hash chain, `export` writes a
//! time range as CSV. Both read the database as the local operator.
use std::io::Write as _;

use anyhow::{Context, Result, bail};
use outpost_store::audit::{AuditQuery, CSV_HEADER, csv_line};
use outpost_store::scope::Viewer;
use outpost_store::{Store, StoreError};

use crate::cli::Location;

/// Records read per query while exporting.
const EXPORT_CHUNK: i64 = 5_000;

/// `audit verify`: prints the head on success; an error naming the first
/// broken record otherwise (the process then exits non-zero).
pub async fn verify(location: &Location) -> Result<()> {
    let (store, admin) = open(location).await?;
    let report = store.verify_audit_chain(&admin).await;
    store.close().await;
    let report = report.context("reading the audit log")?;
    if let Some(broken) = report.broken {
        bail!(
            "the audit log's hash chain is broken at seq {}: {broken} ({} records before it verified)",
            broken.seq(),
            report.checked
        );
    }
    println!("audit log verified: {} records, hash chain intact", report.checked);
    println!("head: {}", report.head);
    println!("Keep this head somewhere off this machine: a later head must continue from it.");
    Ok(())
}

/// `audit export`: CSV of `[from, to)` on standard output.
pub async fn export(location: &Location, from: &str, to: &str, tenant: Option<&str>) -> Result<()> {
    let from_ms = parse_rfc3339("--from", from)?;
    let to_ms = parse_rfc3339("--to", to)?;
    if from_ms >= to_ms {
        bail!("--from ({from}) must be before --to ({to})");
    }
    let (store, admin) = open(location).await?;
    let result = write_csv(&store, admin, from_ms, to_ms, tenant).await;
    store.close().await;
    result
}

async fn write_csv(
    store: &Store,
    admin: outpost_store::AdminScope,
    from_ms: i64,
    to_ms: i64,
    tenant: Option<&str>,
) -> Result<()> {
    let tenant = match tenant {
        None => None,
        Some(name) => match store.tenant_by_name(&admin, name).await {
            Ok(id) => Some(id),
            Err(StoreError::NotFound(_)) => bail!("no tenant named {name:?}"),
            Err(e) => return Err(e.into()),
        },
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    out.write_all(CSV_HEADER.as_bytes())?;
    let mut after = 0;
    loop {
        let query = AuditQuery {
            from_ms,
            to_ms,
            tenant,
            after_seq: after,
            limit: EXPORT_CHUNK,
            newest_first: false,
        };
        let chunk = store.audit_records(&Viewer::Admin(admin), &query).await?;
        let Some(last) = chunk.last() else { break };
        after = last.seq;
        for r in &chunk {
            out.write_all(csv_line(r).as_bytes())?;
        }
    }
    out.flush().context("writing to standard output")?;
    Ok(())
}

/// Unix ms of an RFC 3339 time.
fn parse_rfc3339(flag: &str, s: &str) -> Result<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("{flag} {s:?} is not an RFC 3339 time (e.g. 2025-01-31T00:00:00Z)"))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).with_context(|| format!("{flag} {s:?} is out of range"))
}

async fn open(location: &Location) -> Result<(Store, outpost_store::AdminScope)> {
    Store::open_as_operator(&location.data_dir, location.database_url.as_deref())
        .await
        .with_context(|| format!("opening the database for {}", location.data_dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc_3339() {
        assert_eq!(
            parse_rfc3339("--from", "2023-11-14T22:13:20Z").ok(),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_rfc3339("--from", "2023-11-14T23:13:20.5+01:00").ok(),
            Some(1_700_000_000_500)
        );
        let e = parse_rfc3339("--to", "yesterday").expect_err("not a time");
        assert!(e.to_string().contains("--to"), "{e}");
    }
}
