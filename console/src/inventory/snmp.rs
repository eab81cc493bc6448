//! A discovery job's SNMP credentials (a v2c community, an SNMPv3 authPriv
//! user), checked and sealed for the store in the one form the agent port
//! opens when it sends the job to agents: the protobuf encoding of a
//! `DiscoveryJob` that carries only the credentials, sealed with the
//! tenant's vault key and bound to the job id. The console's job form and
//! `outpost-collector discovery job add` both check and seal here.
use outpost_proto::agent_v1::{DiscoveryJob, SnmpCredential, SnmpV3User, snmp_credential};
use outpost_store::inventory::JobId;
use outpost_vault::{TenantKey, VaultError};
use prost::Message as _;

/// What a job with one community says about its credentials, without the
/// secret (the agent port's summary of the same credentials).
pub const ONE_COMMUNITY: &str = "1 community";

/// Most characters of a community the console accepts.
pub const MAX_COMMUNITY_CHARS: usize = 128;

/// Authentication protocols of an SNMPv3 user: the name sent to agents and
/// what the form shows. SHA-1 first: what most devices are set up with.
pub const AUTH_PROTOCOLS: &[(&str, &str)] = &[
    ("sha1", "SHA-1"),
    ("sha256", "SHA-256"),
    ("sha384", "SHA-384"),
    ("sha512", "SHA-512"),
    ("sha224", "SHA-224"),
    ("md5", "MD5"),
];

/// Privacy (encryption) protocols of an SNMPv3 user, as [`AUTH_PROTOCOLS`].
pub const PRIV_PROTOCOLS: &[(&str, &str)] = &[
    ("aes128", "AES-128"),
    ("aes192", "AES-192"),
    ("aes256", "AES-256"),
    ("des", "DES"),
];

/// Longest SNMPv3 user name (RFC 3414: `SnmpAdminString (SIZE(1..32))`).
pub const MAX_V3_USER_CHARS: usize = 32;
/// Shortest SNMPv3 password: net-snmp and the agent refuse shorter ones.
pub const MIN_V3_PASSWORD_CHARS: usize = 8;
/// Longest SNMPv3 password accepted.
pub const MAX_V3_PASSWORD_CHARS: usize = 128;

/// An SNMPv3 authPriv user as entered.
#[derive(Clone, Copy)]
pub struct V3Entry<'a> {
    /// User name.
    pub user: &'a str,
    /// Authentication protocol, e.g. `sha`, `SHA-256` (net-snmp's names too).
    pub auth: &'a str,
    /// Authentication password, a secret.
    pub auth_password: &'a str,
    /// Privacy protocol, e.g. `aes`, `AES-256`.
    pub privacy: &'a str,
    /// Privacy password, a secret.
    pub priv_password: &'a str,
}

/// Why a credential was refused: the form field it is about, and a message
/// that never quotes a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `community`, `v3_user`, `v3_auth`, `v3_auth_password`, `v3_priv` or
    /// `v3_priv_password`.
    pub field: &'static str,
    /// What was wrong.
    pub message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        field,
        message: message.into(),
    }
}

/// The protocol `name` stands for in `table`, in net-snmp's spelling or
/// ours, any case, with or without dashes (`SHA` is SHA-1, `AES` AES-128).
fn protocol(table: &[(&'static str, &str)], name: &str) -> Option<&'static str> {
    let key = name.trim().to_ascii_lowercase().replace('-', "");
    let key = match key.as_str() {
        "sha" => "sha1",
        "aes" => "aes128",
        other => other,
    };
    table.iter().find(|(wire, _)| *wire == key).map(|(wire, _)| *wire)
}

fn names(table: &[(&str, &str)]) -> String {
    table.iter().map(|(_, label)| *label).collect::<Vec<_>>().join(", ")
}

fn password(field: &'static str, which: &str, user: &str, password: &str) -> Result<(), Refusal> {
    let n = password.chars().count();
    if !(MIN_V3_PASSWORD_CHARS..=MAX_V3_PASSWORD_CHARS).contains(&n) || password.chars().any(char::is_control) {
        return Err(refuse(
            field,
            format!(
                "the SNMPv3 {which} password of user {user:?} must be {MIN_V3_PASSWORD_CHARS} to \
                 {MAX_V3_PASSWORD_CHARS} printable characters"
            ),
        ));
    }
    Ok(())
}

/// Checks a v2c community.
pub fn community(community: &str) -> Result<SnmpCredential, Refusal> {
    if community.is_empty()
        || community.chars().count() > MAX_COMMUNITY_CHARS
        || community.chars().any(char::is_control)
    {
        return Err(refuse(
            "community",
            format!("the SNMP community must be 1 to {MAX_COMMUNITY_CHARS} printable characters"),
        ));
    }
    Ok(SnmpCredential {
        kind: Some(snmp_credential::Kind::Community(community.to_owned())),
    })
}

/// Checks an SNMPv3 authPriv user: a user name, both protocols known to
/// the agent, both passwords long enough.
pub fn v3_user(e: &V3Entry<'_>) -> Result<SnmpCredential, Refusal> {
    let user = e.user.trim();
    if user.is_empty() || user.chars().count() > MAX_V3_USER_CHARS || user.chars().any(char::is_control) {
        return Err(refuse(
            "v3_user",
            format!("the SNMPv3 user name must be 1 to {MAX_V3_USER_CHARS} printable characters"),
        ));
    }
    let auth = protocol(AUTH_PROTOCOLS, e.auth).ok_or_else(|| {
        refuse(
            "v3_auth",
            format!(
                "unknown SNMPv3 authentication protocol {:?}: one of {}",
                e.auth.chars().take(32).collect::<String>(),
                names(AUTH_PROTOCOLS)
            ),
        )
    })?;
    let privacy = protocol(PRIV_PROTOCOLS, e.privacy).ok_or_else(|| {
        refuse(
            "v3_priv",
            format!(
                "unknown SNMPv3 privacy protocol {:?}: one of {}",
                e.privacy.chars().take(32).collect::<String>(),
                names(PRIV_PROTOCOLS)
            ),
        )
    })?;
    password("v3_auth_password", "authentication", user, e.auth_password)?;
    password("v3_priv_password", "privacy", user, e.priv_password)?;
    Ok(SnmpCredential {
        kind: Some(snmp_credential::Kind::V3(SnmpV3User {
            user: user.to_owned(),
            auth_protocol: auth.to_owned(),
            auth_password: e.auth_password.to_owned(),
            priv_protocol: privacy.to_owned(),
            priv_password: e.priv_password.to_owned(),
        })),
    })
}

/// What credentials these are, without their secrets ("1 community,
/// 1 v3 user monitor").
pub fn summary(credentials: &[SnmpCredential]) -> String {
    let communities = credentials
        .iter()
        .filter(|c| matches!(c.kind, Some(snmp_credential::Kind::Community(_))))
        .count();
    let users: Vec<&str> = credentials
        .iter()
        .filter_map(|c| match &c.kind {
            Some(snmp_credential::Kind::V3(u)) => Some(u.user.as_str()),
            _ => None,
        })
        .collect();
    let mut parts = Vec::new();
    match communities {
        0 => {}
        1 => parts.push(ONE_COMMUNITY.to_owned()),
        n => parts.push(format!("{n} communities")),
    }
    match users.len() {
        0 => {}
        1 => parts.push(format!("1 v3 user {}", users[0])),
        n => parts.push(format!("{n} v3 users {}", users.join(", "))),
    }
    parts.join(", ")
}

/// Seals `credentials` for job `job` of the tenant whose key is `tenant`.
pub fn seal(tenant: &TenantKey, job: JobId, credentials: &[SnmpCredential]) -> Result<Vec<u8>, VaultError> {
    let carrier = DiscoveryJob {
        snmp: credentials.to_vec(),
        ..Default::default()
    };
    // Wiped when dropped: it holds the communities and passwords in clear.
    let encoded = zeroize::Zeroizing::new(carrier.encode_to_vec());
    tenant.seal_discovery_credentials(&job.to_string(), &encoded)
}

/// Seals `community` for job `job` of the tenant whose key is `tenant`.
pub fn seal_community(tenant: &TenantKey, job: JobId, community: &str) -> Result<Vec<u8>, VaultError> {
    seal(
        tenant,
        job,
        &[SnmpCredential {
            kind: Some(snmp_credential::Kind::Community(community.to_owned())),
        }],
    )
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

    fn entry<'a>(auth: &'a str, auth_password: &'a str, privacy: &'a str) -> V3Entry<'a> {
        V3Entry {
            user: "outpost",
            auth,
            auth_password,
            privacy,
            priv_password: "privpass1",
        }
    }

    #[test]
    fn v3_users_are_checked_field_by_field_and_never_quote_a_secret() {
        let ok = v3_user(&entry("SHA", "authpass1", "AES")).expect("net-snmp's names");
        let Some(snmp_credential::Kind::V3(u)) = &ok.kind else {
            panic!("{ok:?}")
        };
        assert_eq!((u.auth_protocol.as_str(), u.priv_protocol.as_str()), ("sha1", "aes128"));
        assert!(v3_user(&entry("sha-256", "authpass1", "aes256")).is_ok());
        for (e, field, words) in [
            (entry("rot13", "authpass1", "aes"), "v3_auth", "SHA-1, SHA-256"),
            (entry("sha", "authpass1", "blowfish"), "v3_priv", "AES-128"),
            (entry("sha", "short", "aes"), "v3_auth_password", "8 to 128"),
            (
                V3Entry {
                    priv_password: "x\ny",
                    ..entry("sha", "authpass1", "aes")
                },
                "v3_priv_password",
                "printable",
            ),
            (
                V3Entry {
                    user: " ",
                    ..entry("sha", "authpass1", "aes")
                },
                "v3_user",
                "user name",
            ),
        ] {
            let r = v3_user(&e).expect_err(field);
            assert_eq!(r.field, field, "{r:?}");
            assert!(r.message.contains(words), "{r:?}");
            assert!(!r.message.contains("authpass1") && !r.message.contains("privpass1"));
        }
        let both = [community("n0t-public").expect("a community"), ok];
        assert_eq!(summary(&both), "1 community, 1 v3 user outpost");
        assert_eq!(community("").expect_err("empty").field, "community");
    }
}
