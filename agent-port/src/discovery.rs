//! Discovery for connected agents: each agent is sent its site's jobs
//! (SNMP credentials opened from the vault; they travel only inside this
//! mTLS stream and the agent keeps them in memory), on connect and again
//! whenever the jobs change; and a "scan now" goes to a connected agent of
//! the site, recorded first so the console can follow it.
//!
//! Every connected agent of a site gets the site's jobs: a site with two
//! agents has both scan.
//!
//! A job's SNMP credentials are sealed as one value: the protobuf encoding of
//! a `DiscoveryJob` that carries only them, bound to the job id.
use outpost_certs::SiteId;
use outpost_proto::agent_v1::{Command, DiscoveryAssignment, DiscoveryJob, ScanNow, SnmpCredential, command};
use outpost_store::inventory::jobs::AssignedJob;
use outpost_store::inventory::{JobId, ScanId};
use outpost_store::{AgentScope, Store, StoreError, TenantScope};
use outpost_vault::{TenantKey, Vault, VaultError};
use prost::Message as _;

use super::live::LiveSessions;

/// Seals a job's SNMP credentials for the store.
pub fn seal_snmp(tenant: &TenantKey, job: JobId, credentials: &[SnmpCredential]) -> Result<Vec<u8>, VaultError> {
    let carrier = DiscoveryJob {
        snmp: credentials.to_vec(),
        ..Default::default()
    };
    // Wiped when dropped: it holds the communities and passwords in clear.
    let encoded = zeroize::Zeroizing::new(carrier.encode_to_vec());
    tenant.seal_discovery_credentials(&job.to_string(), &encoded)
}

/// Opens what [`seal_snmp`] sealed.
pub fn open_snmp(tenant: &TenantKey, job: JobId, sealed: &[u8]) -> Result<Vec<SnmpCredential>, String> {
    let encoded = tenant
        .open_discovery_credentials(&job.to_string(), sealed)
        .map_err(|e| format!("the SNMP credentials of job {job} cannot be opened: {e}"))?;
    DiscoveryJob::decode(encoded.as_slice())
        .map(|carrier| carrier.snmp)
        .map_err(|e| format!("the SNMP credentials of job {job} are damaged: {e}"))
}

/// What credentials these are, without their secrets ("1 community,
/// 1 v3 user monitor").
pub fn snmp_summary(credentials: &[SnmpCredential]) -> String {
    outpost_console::inventory::snmp::summary(credentials)
}

/// The wire form of one job, or why it cannot be sent (its credentials do
/// not open: a vault key mismatch or a damaged row, logged by the caller).
fn wire_job(vault: &Vault, j: &AssignedJob) -> Result<DiscoveryJob, String> {
    let snmp = match &j.snmp_sealed {
        Some(sealed) => open_snmp(&vault.tenant(&j.tenant.to_string()), j.id, sealed)?,
        None => Vec::new(),
    };
    Ok(DiscoveryJob {
        job_id: j.id.to_string(),
        targets: j.targets.iter().map(ToString::to_string).collect(),
        ports: j.ports.ports().map(u32::from).collect(),
        rate_pps: j.rate_pps,
        interval_secs: j.interval_secs,
        snmp,
    })
}

/// The site's jobs for an agent; jobs whose credentials do not open are
/// left out and logged.
pub fn assignment(vault: &Vault, scope: &AgentScope, jobs: &[AssignedJob]) -> DiscoveryAssignment {
    let mut out = DiscoveryAssignment::default();
    for j in jobs {
        match wire_job(vault, j) {
            Ok(job) => out.jobs.push(job),
            Err(error) => {
                tracing::error!(agent = %scope.agent(), job = %j.id, %error, "discovery job left out of the assignment")
            }
        }
    }
    out
}

/// Asks a connected agent of a site of the scope's tenant to run `job` (the
/// agent's default scan when none) now; answers the scan id to follow it by
/// (its progress in the hub, its row in the store's scans). The error says
/// why no agent could be asked.
pub async fn scan_now(
    store: &Store,
    sessions: &LiveSessions,
    scope: TenantScope,
    site: SiteId,
    job: Option<JobId>,
) -> Result<ScanId, String> {
    let agents = store
        .connected_site_agents(&scope, site)
        .await
        .map_err(|e| format!("looking up the site's agents failed: {e}"))?;
    let Some(agent) = agents.into_iter().find(|a| sessions.instance_of(a).is_some()) else {
        return Err("no agent of this site is connected to this collector".into());
    };
    let scan = ScanId::random();
    match store.record_scan_request(&scope, site, &scan, job, agent).await {
        Ok(()) => {}
        Err(StoreError::NotFound(what)) => return Err(format!("{what} not found")),
        Err(e) => return Err(format!("recording the scan failed: {e}")),
    }
    let command = Command {
        command_id: uuid::Uuid::new_v4().to_string(),
        kind: Some(command::Kind::ScanNow(ScanNow {
            scan_id: scan.to_string(),
            job_id: job.map(|j| j.to_string()).unwrap_or_default(),
        })),
    };
    if sessions.send_command(&agent, command) {
        tracing::info!(%agent, %site, scan = %scan, "scan requested");
        return Ok(scan);
    }
    if let Err(error) = store.forget_scan_request(&scope, &scan).await {
        tracing::warn!(scan = %scan, %error, "forgetting a scan no agent was asked to run failed");
    }
    Err("the site's agent is not reachable right now (disconnected, or its queue is full); try again".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_proto::agent_v1::{SnmpV3User, snmp_credential};

    fn community(c: &str) -> SnmpCredential {
        SnmpCredential {
            kind: Some(snmp_credential::Kind::Community(c.into())),
        }
    }

    #[test]
    fn snmp_credentials_round_trip_sealed_and_are_summarised_without_secrets() {
        let vault = Vault::generate().expect("vault");
        let tenant = vault.tenant("t");
        let job = JobId::random();
        let creds = vec![
            community("public"),
            SnmpCredential {
                kind: Some(snmp_credential::Kind::V3(SnmpV3User {
                    user: "monitor".into(),
                    auth_protocol: "sha256".into(),
                    auth_password: "s3cret-auth".into(),
                    ..Default::default()
                })),
            },
        ];
        let sealed = seal_snmp(&tenant, job, &creds).expect("seal");
        assert!(!sealed.windows(6).any(|w| w == b"public"));
        assert_eq!(open_snmp(&tenant, job, &sealed).expect("open"), creds);
        assert!(open_snmp(&tenant, JobId::random(), &sealed).is_err());
        assert!(open_snmp(&vault.tenant("u"), job, &sealed).is_err());
        let summary = snmp_summary(&creds);
        assert_eq!(summary, "1 community, 1 v3 user monitor");
        assert!(!summary.contains("public") && !summary.contains("s3cret"));
        assert_eq!(snmp_summary(&[community("a"), community("b")]), "2 communities");
        assert_eq!(snmp_summary(&[]), "");
    }

    #[test]
    fn a_community_the_console_sealed_opens_here_with_the_same_summary() {
        use outpost_console::inventory::snmp::{ONE_COMMUNITY, seal_community};
        let vault = Vault::generate().expect("vault");
        let tenant = vault.tenant("t");
        let job = JobId::random();
        let sealed = seal_community(&tenant, job, "n0t-public").expect("seal");
        let opened = open_snmp(&tenant, job, &sealed).expect("open");
        assert_eq!(opened, [community("n0t-public")]);
        assert_eq!(snmp_summary(&opened), ONE_COMMUNITY);
    }
}
