//! The `discovery` sub-commands: jobs (what a site's agents scan), the
//! inventory they found, the site credential profile, and adopting a
//! discovered router as a managed device.
use anyhow::{Context, Result, bail};
use outpost_proto::agent_v1::SnmpCredential;
use outpost_store::inventory::HostId;
use outpost_store::inventory::JobId;
use outpost_store::inventory::addr::{PortList, parse_targets};
use outpost_store::inventory::jobs::{JobRow, NewJob, validate_job};
use outpost_store::inventory::views::{HostQuery, HostRow};
use outpost_store::scope::Viewer;
use outpost_store::{AdminScope, Store, StoreError};
use outpost_vault::Vault;

use outpost_console::inventory::snmp;

use crate::cli::Location;
use crate::commands::ago;
use crate::data_dir::DataDir;
use outpost_agent_port::discovery::{seal_snmp, snmp_summary};

/// What `discovery job add` needs.
#[derive(Clone)]
pub struct JobSpec {
    /// Tenant name.
    pub tenant: String,
    /// Site name.
    pub site: String,
    /// Comma-separated CIDRs or addresses.
    pub targets: String,
    /// Comma-separated ports and ranges; none: the agent's default list.
    pub ports: Option<String>,
    /// Probes per second (0: the agent's default).
    pub rate: u32,
    /// Seconds between runs (0: on demand only).
    pub interval: u32,
    /// SNMP v2c community, a secret.
    pub community: Option<String>,
    /// SNMPv3 authPriv user.
    pub v3: Option<V3Spec>,
}

/// An SNMPv3 user for `discovery job add`, passwords already read.
#[derive(Clone)]
pub struct V3Spec {
    /// User name.
    pub user: String,
    /// Authentication protocol as given.
    pub auth: String,
    /// Authentication password.
    pub auth_password: zeroize::Zeroizing<String>,
    /// Privacy protocol as given.
    pub privacy: String,
    /// Privacy password.
    pub priv_password: zeroize::Zeroizing<String>,
}

/// Environment variable holding the SNMPv3 authentication password.
pub const V3_AUTH_PASSWORD_ENV: &str = "OUTPOST_SNMP_V3_AUTH_PASSWORD";
/// Environment variable holding the SNMPv3 privacy password.
pub const V3_PRIV_PASSWORD_ENV: &str = "OUTPOST_SNMP_V3_PRIV_PASSWORD";

/// A password from `file` (its first line), else from `env`; never from
/// the command line, where other users of the machine could read it.
fn password(file: Option<&std::path::Path>, env: &str, flag: &str, what: &str) -> Result<zeroize::Zeroizing<String>> {
    if let Some(file) = file {
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(file).with_context(|| format!("reading the {what} from {}", file.display()))?,
        );
        let line = text.lines().next().unwrap_or_default();
        if line.is_empty() {
            bail!("{} holds no {what} (its first line is empty)", file.display());
        }
        return Ok(zeroize::Zeroizing::new(line.to_owned()));
    }
    match std::env::var(env) {
        Ok(v) if !v.is_empty() => Ok(zeroize::Zeroizing::new(v)),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{env} is not valid UTF-8"),
        _ => bail!("no {what}: give {flag} FILE or set {env}"),
    }
}

impl V3Spec {
    /// Reads the passwords from their files or environment variables.
    pub fn read(
        user: String,
        auth: String,
        auth_password_file: Option<&std::path::Path>,
        privacy: String,
        priv_password_file: Option<&std::path::Path>,
    ) -> Result<Self> {
        Ok(Self {
            auth_password: password(
                auth_password_file,
                V3_AUTH_PASSWORD_ENV,
                "--snmp-v3-auth-password-file",
                "SNMPv3 authentication password",
            )?,
            priv_password: password(
                priv_password_file,
                V3_PRIV_PASSWORD_ENV,
                "--snmp-v3-priv-password-file",
                "SNMPv3 privacy password",
            )?,
            user,
            auth,
            privacy,
        })
    }
}

impl std::fmt::Debug for JobSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobSpec")
            .field("tenant", &self.tenant)
            .field("site", &self.site)
            .field("targets", &self.targets)
            .finish_non_exhaustive()
    }
}

async fn open(location: &Location) -> Result<(Store, AdminScope)> {
    Store::open_as_operator(&location.data_dir, location.database_url.as_deref())
        .await
        .with_context(|| format!("opening the database for {}", location.data_dir.display()))
}

/// The vault, checked against the database: secrets sealed with another key
/// would never open.
async fn vault(store: &Store, admin: &AdminScope, dir: &DataDir) -> Result<Vault> {
    let vault = dir.load_vault()?;
    anyhow::ensure!(
        store.check_vault_key(admin, &vault.key_check()).await?,
        "the vault key {} is not the key this database's secrets were sealed with",
        dir.vault_path().display()
    );
    Ok(vault)
}

async fn site_of(
    store: &Store,
    admin: &AdminScope,
    tenant: &str,
    site: &str,
) -> Result<(outpost_certs::TenantId, outpost_certs::SiteId)> {
    match store.find_site(admin, tenant, site).await? {
        Some(found) => Ok(found),
        None => bail!(
            "no site {site:?} of tenant {tenant:?}: create it with `outpost-collector token create --tenant {tenant:?} \
             --site {site:?}`"
        ),
    }
}

/// Adds a job; answers its id.
pub async fn add_job(store: &Store, admin: &AdminScope, dir: &DataDir, spec: &JobSpec) -> Result<JobId> {
    let targets = parse_targets(&spec.targets).map_err(anyhow::Error::msg)?;
    let ports: PortList = spec
        .ports
        .as_deref()
        .unwrap_or_default()
        .parse()
        .map_err(anyhow::Error::msg)?;
    validate_job(&targets, spec.rate, spec.interval).map_err(anyhow::Error::msg)?;
    let mut credentials: Vec<SnmpCredential> = Vec::new();
    if let Some(c) = spec.community.as_deref().filter(|c| !c.is_empty()) {
        credentials.push(snmp::community(c).map_err(|r| anyhow::anyhow!(r.message))?);
    }
    if let Some(v3) = &spec.v3 {
        let entry = snmp::V3Entry {
            user: &v3.user,
            auth: &v3.auth,
            auth_password: &v3.auth_password,
            privacy: &v3.privacy,
            priv_password: &v3.priv_password,
        };
        credentials.push(snmp::v3_user(&entry).map_err(|r| anyhow::anyhow!(r.message))?);
    }
    let (tenant, site) = site_of(store, admin, &spec.tenant, &spec.site).await?;
    let id = JobId::random();
    let snmp_sealed = if credentials.is_empty() {
        None
    } else {
        let vault = vault(store, admin, dir).await?;
        Some(seal_snmp(&vault.tenant(&tenant.to_string()), id, &credentials).context("sealing the SNMP credentials")?)
    };
    let job = NewJob {
        id,
        site,
        targets,
        ports,
        rate_pps: spec.rate,
        interval_secs: spec.interval,
        snmp_sealed,
        snmp_summary: snmp_summary(&credentials),
    };
    match store.add_discovery_job(&admin.tenant_scope(tenant), &job).await {
        Ok(id) => Ok(id),
        Err(StoreError::Conflict(why)) => bail!("{why}"),
        Err(e) => Err(e.into()),
    }
}

/// `discovery job add`.
pub async fn job_add(location: &Location, spec: &JobSpec) -> Result<()> {
    let (store, admin) = open(location).await?;
    let result = add_job(&store, &admin, &DataDir::new(&location.data_dir), spec).await;
    store.close().await;
    let id = result?;
    let when = match spec.interval {
        0 => "when asked to".to_owned(),
        secs => format!("every {secs} s"),
    };
    println!(
        "Added discovery job {id} ({}) to site {:?} of tenant {:?}; the site's agents get it within seconds and scan {when}.",
        spec.targets, spec.site, spec.tenant
    );
    Ok(())
}

fn job_json(j: &JobRow) -> serde_json::Value {
    serde_json::json!({
        "id": j.id.to_string(),
        "tenant": j.tenant_name,
        "site": j.site_name,
        "targets": j.targets.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "ports": j.ports.to_string(),
        "rate_pps": j.rate_pps,
        "interval_secs": j.interval_secs,
        "snmp": j.snmp_summary,
        "created_at_ms": j.created_at_ms,
    })
}

/// `discovery job list`.
pub async fn job_list(location: &Location, json: bool) -> Result<()> {
    let (store, admin) = open(location).await?;
    let jobs = store.list_discovery_jobs(&Viewer::Admin(admin), None).await;
    store.close().await;
    let jobs = jobs?;
    if json {
        let rows: Vec<serde_json::Value> = jobs.iter().map(job_json).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if jobs.is_empty() {
        println!(
            "No discovery jobs: agents scan their own networks hourly. Add one with \
             `outpost-collector discovery job add --tenant T --site S --targets CIDR`."
        );
        return Ok(());
    }
    println!(
        "{:<36}  {:<14} {:<14} {:<32} {:<16} {:>6} {:>8}  SNMP",
        "ID", "TENANT", "SITE", "TARGETS", "PORTS", "RATE", "INTERVAL"
    );
    for j in jobs {
        let ports = if j.ports.is_empty() {
            "default".to_owned()
        } else {
            j.ports.to_string()
        };
        let rate = if j.rate_pps == 0 {
            "default".to_owned()
        } else {
            j.rate_pps.to_string()
        };
        let interval = if j.interval_secs == 0 {
            "on demand".to_owned()
        } else {
            format!("{}s", j.interval_secs)
        };
        let targets: Vec<String> = j.targets.iter().map(ToString::to_string).collect();
        println!(
            "{:<36}  {:<14} {:<14} {:<32} {:<16} {:>6} {:>8}  {}",
            j.id,
            j.tenant_name,
            j.site_name,
            targets.join(","),
            ports,
            rate,
            interval,
            if j.snmp_summary.is_empty() {
                "-"
            } else {
                &j.snmp_summary
            }
        );
    }
    Ok(())
}

/// `discovery job delete`.
pub async fn job_delete(location: &Location, id: &str) -> Result<()> {
    let id: JobId = id
        .parse()
        .map_err(|_| anyhow::anyhow!("{id:?} is not a discovery job id"))?;
    let (store, admin) = open(location).await?;
    let result = async {
        let job = match store.discovery_job(&Viewer::Admin(admin), id).await {
            Ok(j) => j,
            Err(StoreError::NotFound(_)) => bail!("no discovery job with id {id}"),
            Err(e) => return Err(e.into()),
        };
        store.delete_discovery_job(&admin.tenant_scope(job.tenant), id).await?;
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result?;
    println!("Deleted discovery job {id}; the site's agents stop running it.");
    Ok(())
}

fn host_state(h: &HostRow) -> String {
    let mut s = Vec::new();
    if h.gone_at_ms.is_some() {
        s.push("gone".to_owned());
    }
    if h.conflict.is_some() {
        s.push("conflict".to_owned());
    }
    if let Some(d) = h.device {
        s.push(format!("device {d}"));
    }
    if s.is_empty() { "up".to_owned() } else { s.join(", ") }
}

fn ports_text(h: &HostRow) -> String {
    let tcp = PortList::from_ports(h.tcp_ports()).to_string();
    let other: Vec<String> = h
        .open_ports
        .iter()
        .filter(|p| p.protocol != "tcp")
        .map(|p| format!("{}/{}", p.port, p.protocol))
        .collect();
    [tcp]
        .into_iter()
        .chain(other)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

/// `discovery hosts`: the inventory (or only the routers that can be adopted).
pub async fn hosts(location: &Location, tenant: Option<&str>, adoptable: bool, json: bool) -> Result<()> {
    let (store, admin) = open(location).await?;
    let viewer = Viewer::Admin(admin);
    let result = async {
        if adoptable {
            let found = store.adoption_candidates(&viewer, None).await?;
            Ok::<_, StoreError>(
                found
                    .into_iter()
                    .map(|c| (c.host, Some((c.why, c.api_port, c.api_tls))))
                    .collect(),
            )
        } else {
            let query = HostQuery {
                include_gone: true,
                ..HostQuery::default()
            };
            Ok(store
                .list_hosts(&viewer, &query)
                .await?
                .into_iter()
                .map(|h| (h, None))
                .collect::<Vec<_>>())
        }
    }
    .await;
    store.close().await;
    let mut rows = result?;
    if let Some(t) = tenant {
        rows.retain(|(h, _)| h.tenant_name == t);
    }
    if json {
        let out: Vec<serde_json::Value> = rows
            .iter()
            .map(|(h, adopt)| {
                let mut v = serde_json::json!({
                    "id": h.id.to_string(),
                    "tenant": h.tenant_name,
                    "site": h.site_name,
                    "address": h.address,
                    "mac": h.mac,
                    "vendor": h.vendor,
                    "name": h.name,
                    "names": h.names,
                    "os_guess": h.os_guess,
                    "open_ports": h.open_ports.iter().map(|p| format!("{}/{}", p.port, p.protocol)).collect::<Vec<_>>(),
                    "seen_by": h.seen_by,
                    "first_seen_ms": h.first_seen_ms,
                    "last_seen_ms": h.last_seen_ms,
                    "missed_scans": h.missed_scans,
                    "gone_at_ms": h.gone_at_ms,
                    "conflict": h.conflict,
                    "device": h.device.map(|d| d.to_string()),
                    "snmp_name": h.snmp_name,
                    "snmp_object_id": h.snmp_object_id,
                    "mndp_identity": h.mndp_identity,
                });
                if let Some((why, port, tls)) = adopt {
                    v["adopt"] = serde_json::json!({ "why": why, "api_port": port, "api_tls": tls });
                }
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if rows.is_empty() {
        if adoptable {
            println!("No discovered host looks like a RouterOS router that is not managed yet.");
        } else {
            println!("No hosts discovered yet: agents report what their scans find.");
        }
        return Ok(());
    }
    println!(
        "{:<36}  {:<14} {:<14} {:<17} {:<17} {:<20} {:<16} {:<20} {:<10} STATE",
        "ID", "TENANT", "SITE", "ADDRESS", "MAC", "NAME", "VENDOR", "PORTS", "LAST SEEN"
    );
    for (h, adopt) in rows {
        println!(
            "{:<36}  {:<14} {:<14} {:<17} {:<17} {:<20} {:<16} {:<20} {:<10} {}",
            h.id,
            h.tenant_name,
            h.site_name,
            h.address,
            h.mac,
            h.name,
            h.vendor,
            ports_text(&h),
            ago(Some(h.last_seen_ms)),
            host_state(&h)
        );
        if let Some(conflict) = &h.conflict {
            println!("    conflict: {conflict}");
        }
        if let Some((why, port, tls)) = adopt {
            let api = if tls { "API-SSL" } else { "API" };
            println!("    adoptable ({}): would use {api} on port {port}", why.join(", "));
        }
    }
    Ok(())
}

/// `discovery profile set`: the RouterOS login a site's routers are adopted with.
pub async fn profile_set(location: &Location, tenant: &str, site: &str, user: &str, password: &str) -> Result<()> {
    if password.is_empty() {
        bail!("the password is empty");
    }
    let (store, admin) = open(location).await?;
    let result = async {
        let (tenant_id, site_id) = site_of(&store, &admin, tenant, site).await?;
        let vault = vault(&store, &admin, &DataDir::new(&location.data_dir)).await?;
        let sealed = vault
            .tenant(&tenant_id.to_string())
            .seal_site_password(&site_id.to_string(), password)
            .context("sealing the password")?;
        match store
            .set_site_credential(&admin.tenant_scope(tenant_id), site_id, user, &sealed)
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict(why)) => bail!("{why}"),
            Err(e) => Err(e.into()),
        }
    }
    .await;
    store.close().await;
    result?;
    println!("Routers of site {site:?} of tenant {tenant:?} are adopted as user {user:?} from now on.");
    Ok(())
}

/// Adopts a host (tenant taken from the host) with its site's profile.
pub async fn adopt_host(
    store: &Store,
    admin: &AdminScope,
    dir: &DataDir,
    host: HostId,
) -> Result<outpost_store::devices::DeviceId> {
    let row = match store.host(&Viewer::Admin(*admin), host).await {
        Ok(d) => d.host,
        Err(StoreError::NotFound(_)) => bail!("no discovered host with id {host}"),
        Err(e) => return Err(e.into()),
    };
    let vault = vault(store, admin, dir).await?;
    let key = vault.tenant(&row.tenant.to_string());
    let adopted = store
        .adopt_host(
            &admin.tenant_scope(row.tenant),
            host,
            &outpost_store::audit::Actor::local_operator(),
            |r| {
                key.reseal_site_password_for_device(&r.site.to_string(), &r.device.to_string(), r.sealed)
                    .map_err(|e| format!("the site's profile password cannot be used: {e}"))
            },
        )
        .await;
    match adopted {
        Ok(id) => Ok(id),
        Err(StoreError::Conflict(why) | StoreError::Vault(why)) => bail!("{why}"),
        Err(StoreError::NotFound(_)) => bail!("host {host} is gone or not a live host"),
        Err(e) => Err(e.into()),
    }
}

/// `discovery adopt`.
pub async fn adopt(location: &Location, id: &str) -> Result<()> {
    let host: HostId = id.parse().map_err(|_| anyhow::anyhow!("{id:?} is not a host id"))?;
    let (store, admin) = open(location).await?;
    let result = adopt_host(&store, &admin, &DataDir::new(&location.data_dir), host).await;
    store.close().await;
    let device = result?;
    println!("Adopted host {host} as device {device}; the site's agent polls it within a minute.");
    Ok(())
}
