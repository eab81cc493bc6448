//! Turns a received `Batch` into rows to store and rejections to report.
//!
//! Identity is never read from the message: the scope comes from the verified
//! certificate, and [`super::tenancy`] refuses a `Source` claim that names
//! another tenant, site or agent. Those, and anything malformed, are rejected
//! (and logged) one by one; the rest of the batch is still stored and the
//! stream stays up.
use outpost_proto::agent_v1::{Batch, ConfigBackup, HostFacts, Observation, Rejection, observation};
use outpost_store::devices::DeviceId;
use outpost_store::devices::reports::{DeviceReport, ReportBody};

use super::{device_reports, discovery_reports};
use outpost_proto::{
    MAX_BACKUP_BYTES, MAX_BATCH_OBSERVATIONS, MAX_DEVICE_REPORT_BYTES, MAX_DISCOVERY_REPORT_BYTES,
    MAX_OBSERVATION_BYTES,
};
use outpost_store::inventory::records::{DiscoveryBody, DiscoveryReport};
use prost::Message as _;

use outpost_store::AgentScope;
use outpost_store::ingest::{HostFactsRow, IngestBatch, MetricRow};

const MAX_NAME: usize = 256;
const MAX_ADDRESSES: usize = 256;

/// Why a whole batch is refused (the stream ends with this status).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// More observations than the protocol allows.
    #[error("batch has {0} observations; the limit is {MAX_BATCH_OBSERVATIONS}")]
    TooLarge(usize),
    /// Empty batch.
    #[error("batch has no observations")]
    Empty,
}

/// The outcome of validating one batch.
#[derive(Debug, Default)]
pub struct Validated {
    /// What to store.
    pub batch: IngestBatch,
    /// What to refuse, with reasons.
    pub rejected: Vec<Rejection>,
    /// Configuration backups, which the collector opens (to diff them)
    /// before they are stored.
    pub backups: Vec<PendingBackup>,
}

/// A configuration backup as received.
#[derive(Debug)]
pub struct PendingBackup {
    /// Sequence number.
    pub seq: i64,
    /// Agent clock.
    pub observed_at_ms: i64,
    /// The sealed export.
    pub backup: ConfigBackup,
}

impl Validated {
    fn device(&mut self, seq: i64, observed_at_ms: i64, report: Result<(DeviceId, ReportBody), String>) {
        match report {
            Ok((device, body)) => self.batch.devices.push(DeviceReport {
                seq,
                observed_at_ms,
                device,
                body,
            }),
            Err(reason) => {
                tracing::warn!(seq, reason = %reason, "device report rejected");
                self.rejected.push(Rejection {
                    seq: u64::try_from(seq).unwrap_or(0),
                    reason,
                });
            }
        }
    }

    fn discovery(&mut self, seq: i64, observed_at_ms: i64, report: Result<DiscoveryBody, String>) {
        match report {
            Ok(body) => self.batch.discovery.push(DiscoveryReport {
                seq,
                observed_at_ms,
                body,
            }),
            Err(reason) => {
                tracing::warn!(seq, reason = %reason, "discovery report rejected");
                self.rejected.push(Rejection {
                    seq: u64::try_from(seq).unwrap_or(0),
                    reason,
                });
            }
        }
    }
}

/// Validates a batch from the agent identified by `scope`.
pub fn validate_batch(scope: &AgentScope, batch: Batch) -> Result<Validated, BatchError> {
    let n = batch.observations.len();
    if n == 0 {
        return Err(BatchError::Empty);
    }
    if n > MAX_BATCH_OBSERVATIONS {
        return Err(BatchError::TooLarge(n));
    }
    let mut out = Validated::default();
    out.batch.outbox_depth = i64::try_from(batch.outbox_depth).unwrap_or(i64::MAX);
    out.batch.metrics.reserve(n);
    for obs in batch.observations {
        let seq = obs.seq;
        let Ok(seq_i64) = i64::try_from(seq) else {
            // Cannot be acknowledged either: report and move on.
            out.rejected.push(Rejection {
                seq,
                reason: "sequence number out of range".into(),
            });
            continue;
        };
        out.batch.through_seq = out.batch.through_seq.max(seq_i64);
        if let Err(reason) = validate_one(scope, &obs) {
            tracing::warn!(
                agent = %scope.agent(),
                tenant = %scope.tenant(),
                seq,
                reason = %reason,
                "observation rejected"
            );
            out.rejected.push(Rejection { seq, reason });
            continue;
        }
        match obs.body {
            Some(observation::Body::Metric(m)) => out.batch.metrics.push(MetricRow {
                seq: seq_i64,
                observed_at_ms: obs.observed_at_ms,
                name: m.name,
                subject: m.subject,
                value: m.value,
            }),
            Some(observation::Body::HostFacts(f)) => {
                out.batch
                    .host_facts
                    .push(host_facts_row(seq_i64, obs.observed_at_ms, f))
            }
            Some(observation::Body::DeviceStatus(d)) => {
                out.device(seq_i64, obs.observed_at_ms, device_reports::status(&d))
            }
            Some(observation::Body::DevicePoll(d)) => out.device(seq_i64, obs.observed_at_ms, device_reports::poll(&d)),
            Some(observation::Body::DeviceLog(d)) => out.device(seq_i64, obs.observed_at_ms, device_reports::log(&d)),
            Some(observation::Body::ConfigBackup(b)) => out.backups.push(PendingBackup {
                seq: seq_i64,
                observed_at_ms: obs.observed_at_ms,
                backup: b,
            }),
            Some(observation::Body::DiscoveredHosts(d)) => {
                out.discovery(seq_i64, obs.observed_at_ms, discovery_reports::hosts(&d))
            }
            Some(observation::Body::ScanFinished(f)) => {
                out.discovery(seq_i64, obs.observed_at_ms, discovery_reports::finished(&f))
            }
            // validate_one refuses it.
            None => {}
        }
    }
    Ok(out)
}

fn host_facts_row(seq: i64, observed_at_ms: i64, f: HostFacts) -> HostFactsRow {
    HostFactsRow {
        seq,
        observed_at_ms,
        hostname: f.hostname,
        os: f.os,
        os_version: f.os_version,
        kernel: f.kernel,
        arch: f.arch,
        addresses: f.addresses.join(","),
        agent_version: f.agent_version,
        outbox_depth: i64::try_from(f.outbox_depth).unwrap_or(i64::MAX),
        uptime_seconds: i64::try_from(f.uptime_seconds).unwrap_or(i64::MAX),
    }
}

fn check_len(what: &str, s: &str) -> Result<(), String> {
    if s.len() > MAX_NAME {
        return Err(format!("{what} is longer than {MAX_NAME} bytes"));
    }
    Ok(())
}

fn validate_one(scope: &AgentScope, obs: &Observation) -> Result<(), String> {
    if obs.seq == 0 {
        return Err("sequence number 0 is reserved".into());
    }
    let limit = match &obs.body {
        Some(observation::Body::DevicePoll(_) | observation::Body::DeviceLog(_)) => MAX_DEVICE_REPORT_BYTES,
        Some(observation::Body::ConfigBackup(_)) => MAX_BACKUP_BYTES,
        Some(observation::Body::DiscoveredHosts(_)) => MAX_DISCOVERY_REPORT_BYTES,
        _ => MAX_OBSERVATION_BYTES,
    };
    if obs.encoded_len() > limit {
        return Err(format!("observation is larger than {limit} bytes"));
    }
    if let Some(source) = &obs.source {
        super::tenancy::check_source(scope, source)?;
    }
    match &obs.body {
        None => Err("observation has no body".into()),
        Some(observation::Body::Metric(m)) => {
            if m.name.is_empty() {
                return Err("metric name is empty".into());
            }
            check_len("metric name", &m.name)?;
            check_len("metric subject", &m.subject)?;
            if !m.value.is_finite() {
                return Err(format!("metric {:?} value is not a finite number", m.name));
            }
            Ok(())
        }
        Some(observation::Body::HostFacts(f)) => {
            for (what, s) in [
                ("hostname", &f.hostname),
                ("os", &f.os),
                ("os_version", &f.os_version),
                ("kernel", &f.kernel),
                ("arch", &f.arch),
                ("agent_version", &f.agent_version),
            ] {
                check_len(what, s)?;
            }
            if f.addresses.len() > MAX_ADDRESSES {
                return Err(format!("more than {MAX_ADDRESSES} addresses"));
            }
            for a in &f.addresses {
                check_len("address", a)?;
            }
            Ok(())
        }
        // Checked when converted (device_reports, discovery_reports), with
        // the same rejection path.
        Some(
            observation::Body::DeviceStatus(_)
            | observation::Body::DevicePoll(_)
            | observation::Body::DeviceLog(_)
            | observation::Body::ConfigBackup(_)
            | observation::Body::DiscoveredHosts(_)
            | observation::Body::ScanFinished(_),
        ) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_certs::{AgentCertificate, AgentId, AgentIdentity, SiteId, TenantId};
    use outpost_proto::agent_v1::{MetricSample, Source};

    fn scope() -> AgentScope {
        AgentScope::from_certificate(&AgentCertificate {
            identity: AgentIdentity {
                tenant: TenantId::random(),
                site: SiteId::random(),
                agent: AgentId::random(),
            },
            serial: String::new(),
            not_before: 0,
            not_after: 0,
        })
    }

    fn metric(seq: u64, source: Option<Source>) -> Observation {
        Observation {
            seq,
            observed_at_ms: 1,
            source,
            body: Some(observation::Body::Metric(MetricSample {
                name: "m".into(),
                value: 1.0,
                subject: String::new(),
            })),
        }
    }

    #[test]
    fn rejects_claims_of_another_tenant_but_keeps_the_rest() {
        let s = scope();
        let other = Source {
            tenant: TenantId::random().to_string(),
            ..Default::default()
        };
        let own = Source {
            tenant: s.tenant().to_string(),
            agent_id: s.agent().to_string(),
            ..Default::default()
        };
        let v = validate_batch(
            &s,
            Batch {
                observations: vec![metric(1, Some(own)), metric(2, Some(other)), metric(3, None)],
                outbox_depth: 0,
            },
        )
        .expect("valid batch");
        assert_eq!(v.batch.metrics.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(v.rejected.len(), 1);
        assert_eq!(v.rejected[0].seq, 2);
        assert!(v.rejected[0].reason.contains("another tenant"));
        assert_eq!(v.batch.through_seq, 3);
    }

    #[test]
    fn rejects_another_agent_and_missing_bodies_and_nan() {
        let s = scope();
        let other = Source {
            agent_id: AgentId::random().to_string(),
            ..Default::default()
        };
        let mut nan = metric(3, None);
        if let Some(observation::Body::Metric(m)) = &mut nan.body {
            m.value = f64::NAN;
        }
        let v = validate_batch(
            &s,
            Batch {
                observations: vec![
                    metric(1, Some(other)),
                    Observation {
                        seq: 2,
                        ..Default::default()
                    },
                    nan,
                    metric(0, None),
                ],
                outbox_depth: 0,
            },
        )
        .expect("valid batch");
        assert!(v.batch.metrics.is_empty());
        assert_eq!(v.rejected.len(), 4);
    }

    fn discovered(seq: u64, address: &str, hosts: usize) -> Observation {
        use outpost_proto::agent_v1::{DiscoveredHost, DiscoveredHosts};
        Observation {
            seq,
            observed_at_ms: 1,
            source: None,
            body: Some(observation::Body::DiscoveredHosts(DiscoveredHosts {
                scan_id: "scan-1".into(),
                hosts: vec![
                    DiscoveredHost {
                        address: address.into(),
                        vendor: "v".repeat(200),
                        ..Default::default()
                    };
                    hosts
                ],
                ..Default::default()
            })),
        }
    }

    #[test]
    fn discovery_reports_are_accepted_and_bad_ones_refused_alone() {
        use outpost_proto::agent_v1::ScanFinished;
        let s = scope();
        let finished = Observation {
            seq: 5,
            observed_at_ms: 2,
            source: None,
            body: Some(observation::Body::ScanFinished(ScanFinished {
                scan_id: "scan-1".into(),
                targets: vec!["192.0.2.0/24".into()],
                ..Default::default()
            })),
        };
        // 4,000 hosts of ~210 bytes: far above the 64 KiB of other
        // observations, within a discovery chunk's 2 MiB.
        let big = discovered(3, "192.0.2.7", 4_000);
        assert!(big.encoded_len() > MAX_OBSERVATION_BYTES);
        let v = validate_batch(
            &s,
            Batch {
                observations: vec![
                    discovered(1, "192.0.2.1", 1),
                    discovered(2, "not-an-address", 1),
                    big,
                    discovered(4, "192.0.2.9", 11_000),
                    finished,
                    metric(6, None),
                ],
                outbox_depth: 0,
            },
        )
        .expect("valid batch");
        let stored: Vec<i64> = v.batch.discovery.iter().map(|d| d.seq).collect();
        assert_eq!(stored, [1, 3, 5]);
        let rejected: Vec<(u64, &str)> = v.rejected.iter().map(|r| (r.seq, r.reason.as_str())).collect();
        assert_eq!(rejected.len(), 2, "{rejected:?}");
        assert!(rejected[0].0 == 2 && rejected[0].1.contains("is not an IPv4 or IPv6 address"));
        assert!(rejected[1].0 == 4 && rejected[1].1.contains("larger than 2097152 bytes"));
        assert_eq!((v.batch.metrics.len(), v.batch.through_seq), (1, 6));
    }

    #[test]
    fn refuses_empty_and_oversized_batches() {
        let s = scope();
        assert!(matches!(validate_batch(&s, Batch::default()), Err(BatchError::Empty)));
        let big = Batch {
            observations: (1..=MAX_BATCH_OBSERVATIONS as u64 + 1)
                .map(|i| metric(i, None))
                .collect(),
            outbox_depth: 0,
        };
        assert!(matches!(validate_batch(&s, big), Err(BatchError::TooLarge(_))));
    }
}
