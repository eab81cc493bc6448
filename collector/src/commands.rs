//! The administrative sub-commands (`init`, `token`, `agent`, `site`, `admin`).
use std::time::Duration;

use anyhow::{Context, Result, bail};
use outpost_certs::AgentId;
use outpost_certs::token::EnrollmentToken;
use outpost_store::audit::Actor;
use outpost_store::scope::Viewer;
use outpost_store::tenants::validate_name;
use outpost_store::{AdminScope, Store, StoreError};

use crate::cli::Location;
use crate::data_dir::{DataDir, default_server_names};

/// The console administrator created by `init`.
pub const ADMIN_USER: &str = "admin";

/// Opens the database as the local operator, who may act for every tenant.
pub(crate) async fn open(location: &Location) -> Result<(Store, AdminScope)> {
    Store::open_as_operator(&location.data_dir, location.database_url.as_deref())
        .await
        .with_context(|| format!("opening the database for {}", location.data_dir.display()))
}

/// A random password: 20 characters from an unambiguous alphabet (~115 bits).
pub fn random_password() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `init`: CA, server certificate, database, admin account. Returns the admin password.
pub async fn init(location: &Location, sans: &[String]) -> Result<String> {
    let dir = DataDir::new(&location.data_dir);
    let names = default_server_names(sans);
    let ca = dir.init(&names)?;
    let (store, admin) = open(location).await?;
    let password = random_password();
    store
        .set_admin_password(&admin, ADMIN_USER, &password, &Actor::local_operator())
        .await?;
    store.close().await;
    println!("Initialised collector in {}", dir.root().display());
    println!("  CA fingerprint (sha256): {}", ca.fingerprint());
    println!("  agent-port certificate names: {}", names.join(", "));
    println!(
        "  database: {}",
        location
            .database_url
            .as_deref()
            .map(redact_url)
            .unwrap_or_else(|| "SQLite in the data directory".into())
    );
    println!("Console administrator (shown once, store it now):");
    println!("  username: {ADMIN_USER}");
    println!("  password: {password}");
    Ok(password)
}

/// Hides the password part of a database URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// `token create`. Prints the token on the last line and returns it.
pub async fn token_create(location: &Location, tenant: &str, site: &str, ttl: Duration) -> Result<String> {
    validate_name("tenant", tenant).map_err(anyhow::Error::msg)?;
    validate_name("site", site).map_err(anyhow::Error::msg)?;
    let ca = DataDir::new(&location.data_dir).load_ca()?;
    let (store, admin) = open(location).await?;
    let ensured = store.ensure_site(&admin, tenant, site).await?;
    if ensured.tenant_created {
        println!("Created tenant {tenant:?} ({})", ensured.tenant);
    }
    if ensured.site_created {
        println!("Created site {site:?} ({}) in tenant {tenant:?}", ensured.site);
    }
    let token = EnrollmentToken::generate(ca.fingerprint());
    let expires_ms = store
        .create_token(&admin, &ensured, &token, ttl, &Actor::local_operator())
        .await?;
    store.close().await;
    let expires = time::OffsetDateTime::from_unix_timestamp(expires_ms / 1000)
        .map(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        })
        .unwrap_or_default();
    println!("Single-use enrollment token for tenant {tenant:?}, site {site:?}, valid until {expires}:");
    let text = token.to_string();
    println!("{text}");
    Ok(text)
}

/// How long ago `ms` was, in words ("5m ago"); "never" for none.
pub(crate) fn ago(ms: Option<i64>) -> String {
    let Some(ms) = ms else { return "never".into() };
    let secs = (outpost_store::now_ms() - ms).max(0) / 1000;
    match secs {
        0..=119 => format!("{secs}s ago"),
        120..=7199 => format!("{}m ago", secs / 60),
        7200..=172_799 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

/// `agent list`.
pub async fn agent_list(location: &Location, json: bool) -> Result<()> {
    let dir = DataDir::new(&location.data_dir);
    if let Ok((not_after, true)) = dir.server_expiry() {
        // On stderr, so `--json` output stays parseable.
        eprintln!("warning: {}", crate::data_dir::expiry_warning(dir.root(), not_after));
    }
    let (store, admin) = open(location).await?;
    let agents = store.list_agents(&Viewer::Admin(admin)).await?;
    store.close().await;
    if json {
        let rows: Vec<serde_json::Value> = agents
            .iter()
            .map(|a| {
                serde_json::json!({
                    "id": a.agent.to_string(),
                    "tenant": a.tenant_name,
                    "tenant_id": a.tenant.to_string(),
                    "site": a.site_name,
                    "site_id": a.site.to_string(),
                    "hostname": a.hostname,
                    "os": a.os,
                    "version": a.version,
                    "online": a.online,
                    "revoked": a.revoked,
                    "last_seen_ms": a.last_seen_ms,
                    "outbox_depth": a.outbox_depth,
                    "acked_seq": a.acked_seq,
                    "cert_not_after_ms": a.cert_not_after_ms,
                    "instance_id": a.instance_id,
                    "instance_conflict": a.conflict_note(),
                    "seq_conflicts": a.seq_conflicts,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if agents.is_empty() {
        println!("No agents enrolled. Create a token with `outpost-collector token create --tenant NAME --site NAME`.");
        return Ok(());
    }
    println!(
        "{:<36}  {:<16} {:<16} {:<20} {:<8} {:<10} {:<10} {:>8}",
        "ID", "TENANT", "SITE", "HOSTNAME", "STATUS", "LAST SEEN", "VERSION", "OUTBOX"
    );
    for a in agents {
        let status = if a.revoked {
            "revoked"
        } else if a.online {
            "online"
        } else {
            "offline"
        };
        println!(
            "{:<36}  {:<16} {:<16} {:<20} {:<8} {:<10} {:<10} {:>8}",
            a.agent,
            a.tenant_name,
            a.site_name,
            a.hostname,
            status,
            ago(a.last_seen_ms),
            a.version,
            a.outbox_depth
        );
        if let Some(note) = a.conflict_note() {
            println!("    warning: {note}");
        }
        if a.seq_conflicts > 0 {
            println!(
                "    warning: {} resent observation(s) differed from what was stored under the same sequence number",
                a.seq_conflicts
            );
        }
    }
    Ok(())
}

/// `agent revoke`.
pub async fn agent_revoke(location: &Location, id: &str) -> Result<()> {
    let agent: AgentId = id.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let (store, admin) = open(location).await?;
    let result = store.revoke_agent(&admin, agent, &Actor::local_operator()).await;
    store.close().await;
    match result {
        Ok(true) => println!("Revoked agent {agent}; it is refused at the TLS handshake from now on."),
        Ok(false) => println!("Agent {agent} was already revoked."),
        Err(StoreError::NotFound(_)) => bail!("no agent with id {agent}"),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// `site delete`.
pub async fn site_delete(location: &Location, tenant: &str, site: &str) -> Result<()> {
    let (store, admin) = open(location).await?;
    let result = store.delete_site(&admin, tenant, site, &Actor::local_operator()).await;
    store.close().await;
    match result {
        Ok((id, revoked)) => println!(
            "Deleted site {site:?} ({id}) of tenant {tenant:?}: its unused enrollment tokens no longer work and \
             its {revoked} agent(s) are revoked (refused at the TLS handshake, connections closed)."
        ),
        Err(StoreError::NotFound(what)) => bail!("{what} not found"),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// `cert renew`.
pub fn cert_renew(data_dir: &std::path::Path, sans: &[String]) -> Result<()> {
    let dir = DataDir::new(data_dir);
    if !dir.is_initialised() {
        bail!(
            "{} is not an initialised collector data directory (no ca.key); run `outpost-collector init` first",
            data_dir.display()
        );
    }
    let renewed = dir.renew_server(sans)?;
    let until = time::OffsetDateTime::from_unix_timestamp(renewed.not_after)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default();
    println!(
        "Renewed the agent-port certificate in {} (same CA), valid until {until}, for: {}",
        dir.server_file().display(),
        renewed.names.join(", ")
    );
    println!("A running collector picks it up within a few seconds; agents notice nothing.");
    Ok(())
}

/// `admin reset-password`.
pub async fn admin_reset_password(location: &Location, username: &str) -> Result<String> {
    validate_name("user", username).map_err(anyhow::Error::msg)?;
    let (store, admin) = open(location).await?;
    let password = random_password();
    store
        .set_admin_password(&admin, username, &password, &Actor::local_operator())
        .await?;
    store.close().await;
    println!("New password for {username:?} (shown once): {password}");
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn passwords_are_long_and_differ() {
        let (a, b) = (random_password(), random_password());
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
    }
}
