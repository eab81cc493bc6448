//! The tenancy check of the agent port.
//!
//! Who sent an observation is the [`AgentScope`] read from the verified client
//! certificate, never a message field. An observation may still carry a
//! `Source` claim; one that names another tenant, site or agent is refused,
//! because it is either a bug or an attempt to write into someone else's data.
use outpost_proto::agent_v1::Source;

use outpost_store::AgentScope;

/// Checks an observation's `Source` claim against the certificate's scope.
/// Empty fields claim nothing.
pub fn check_source(scope: &AgentScope, source: &Source) -> Result<(), String> {
    if !source.tenant.is_empty() && source.tenant != scope.tenant().to_string() {
        return Err(format!(
            "observation names tenant {:?}, but the agent's certificate is for another tenant",
            source.tenant
        ));
    }
    if !source.site.is_empty() && source.site != scope.site().to_string() {
        return Err(format!(
            "observation names site {:?}, but the agent's certificate is for another site",
            source.site
        ));
    }
    if !source.agent_id.is_empty() && source.agent_id != scope.agent().to_string() {
        return Err(format!(
            "observation names agent {:?}, but the certificate is for another agent",
            source.agent_id
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use outpost_certs::{AgentCertificate, AgentId, AgentIdentity, SiteId, TenantId};

    use super::*;

    #[test]
    fn claims_must_match_the_certificate() {
        let scope = AgentScope::from_certificate(&AgentCertificate {
            identity: AgentIdentity {
                tenant: TenantId::random(),
                site: SiteId::random(),
                agent: AgentId::random(),
            },
            serial: String::new(),
            not_before: 0,
            not_after: 0,
        });
        assert!(check_source(&scope, &Source::default()).is_ok());
        let own = Source {
            tenant: scope.tenant().to_string(),
            site: scope.site().to_string(),
            agent_id: scope.agent().to_string(),
        };
        assert!(check_source(&scope, &own).is_ok());
        for other in [
            Source {
                tenant: TenantId::random().to_string(),
                ..own.clone()
            },
            Source {
                site: SiteId::random().to_string(),
                ..own.clone()
            },
            Source {
                agent_id: AgentId::random().to_string(),
                ..own.clone()
            },
        ] {
            assert!(check_source(&scope, &other).is_err(), "{other:?}");
        }
    }
}
