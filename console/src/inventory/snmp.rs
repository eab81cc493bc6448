//! A discovery job's SNMP community, sealed for the store in the one form
//! the agent port opens when it sends the job to agents: the protobuf
//! encoding of a `DiscoveryJob` that carries only the credentials, sealed
//! with the tenant's vault key and bound to the job id.
use outpost_proto::agent_v1::{DiscoveryJob, SnmpCredential, snmp_credential};
use outpost_store::inventory::JobId;
use outpost_vault::{TenantKey, VaultError};
use prost::Message as _;

/// What a job with one community says about its credentials, without the
/// secret (the agent port's summary of the same credentials).
pub const ONE_COMMUNITY: &str = "1 community";

/// Most characters of a community the console accepts.
pub const MAX_COMMUNITY_CHARS: usize = 128;

/// Seals `community` for job `job` of the tenant whose key is `tenant`.
pub fn seal_community(tenant: &TenantKey, job: JobId, community: &str) -> Result<Vec<u8>, VaultError> {
    let carrier = DiscoveryJob {
        snmp: vec![SnmpCredential {
            kind: Some(snmp_credential::Kind::Community(community.to_owned())),
        }],
        ..Default::default()
    };
    // Wiped when dropped: it holds the community in clear.
    let encoded = zeroize::Zeroizing::new(carrier.encode_to_vec());
    tenant.seal_discovery_credentials(&job.to_string(), &encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_community_opens_as_the_job_carrier_and_only_for_its_job() {
        let vault = outpost_vault::Vault::generate().expect("vault");
        let key = vault.tenant("t");
        let job = JobId::random();
        let sealed = seal_community(&key, job, "n0t-public").expect("seal");
        assert!(!sealed.windows(10).any(|w| w == b"n0t-public"), "sealed, not in clear");
        let opened = key
            .open_discovery_credentials(&job.to_string(), &sealed)
            .expect("opens for its job");
        let carrier = DiscoveryJob::decode(opened.as_slice()).expect("a DiscoveryJob");
        assert!(matches!(
            carrier.snmp.as_slice(),
            [SnmpCredential { kind: Some(snmp_credential::Kind::Community(c)) }] if c == "n0t-public"
        ));
        assert!(
            key.open_discovery_credentials(&JobId::random().to_string(), &sealed)
                .is_err()
        );
        assert!(
            vault
                .tenant("other")
                .open_discovery_credentials(&job.to_string(), &sealed)
                .is_err()
        );
    }
}
