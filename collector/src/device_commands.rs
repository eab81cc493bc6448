//! The `device` sub-commands: add, list, delete, accept a new certificate.
use anyhow::{Context, Result, bail};
use outpost_store::audit::Actor;
use outpost_store::devices::{DeviceId, NewDevice, validate_new};
use outpost_store::scope::Viewer;
use outpost_store::{AdminScope, Store, StoreError};

use crate::cli::Location;
use crate::data_dir::DataDir;

/// What `device add` needs.
#[derive(Debug, Clone)]
pub struct DeviceSpec {
    /// Tenant name.
    pub tenant: String,
    /// Site name.
    pub site: String,
    /// Address.
    pub address: String,
    /// User.
    pub user: String,
    /// API-SSL.
    pub tls: bool,
    /// API port (default 8728 or 8729).
    pub port: Option<u16>,
    /// SSH port.
    pub ssh_port: u16,
    /// Seconds between polls.
    pub interval: u32,
}

/// Adds a device with `password`, sealed with the tenant's vault key.
pub async fn add(
    store: &Store,
    admin: &AdminScope,
    dir: &DataDir,
    spec: &DeviceSpec,
    password: &str,
) -> Result<DeviceId> {
    validate_new(&spec.address, &spec.user, spec.interval).map_err(anyhow::Error::msg)?;
    let Some((tenant, site)) = store.find_site(admin, &spec.tenant, &spec.site).await? else {
        bail!(
            "no site {:?} of tenant {:?}: create it with `outpost-collector token create --tenant {:?} --site {:?}`",
            spec.site,
            spec.tenant,
            spec.tenant,
            spec.site
        );
    };
    let vault = dir.load_vault()?;
    anyhow::ensure!(
        store.check_vault_key(admin, &vault.key_check()).await?,
        "the vault key {} is not the key this database's device passwords were sealed with",
        dir.vault_path().display()
    );
    let id = DeviceId::random();
    let sealed = vault
        .tenant(&tenant.to_string())
        .seal_device_password(&id.to_string(), password)
        .context("sealing the password")?;
    let device = NewDevice {
        id,
        site,
        address: spec.address.clone(),
        api_port: spec.port.unwrap_or(if spec.tls { 8729 } else { 8728 }),
        api_tls: spec.tls,
        ssh_port: spec.ssh_port,
        username: spec.user.clone(),
        password_sealed: sealed,
        poll_interval_secs: spec.interval,
    };
    match store
        .add_device(&admin.tenant_scope(tenant), &device, &Actor::local_operator())
        .await
    {
        Ok(id) => Ok(id),
        Err(StoreError::Conflict(why)) => bail!("{why}"),
        Err(e) => Err(e.into()),
    }
}

async fn open(location: &Location) -> Result<(Store, AdminScope)> {
    Store::open_as_operator(&location.data_dir, location.database_url.as_deref())
        .await
        .with_context(|| format!("opening the database for {}", location.data_dir.display()))
}

/// `device add`.
pub async fn device_add(location: &Location, spec: &DeviceSpec, password: &str) -> Result<()> {
    let (store, admin) = open(location).await?;
    let result = add(&store, &admin, &DataDir::new(&location.data_dir), spec, password).await;
    store.close().await;
    let id = result?;
    println!(
        "Added device {id} ({}:{}) to site {:?} of tenant {:?}; the site's agent polls it within a minute.",
        spec.address,
        spec.port.unwrap_or(if spec.tls { 8729 } else { 8728 }),
        spec.site,
        spec.tenant
    );
    Ok(())
}

/// `device list`.
pub async fn device_list(location: &Location, json: bool) -> Result<()> {
    let (store, admin) = open(location).await?;
    let devices = store.list_devices(&Viewer::Admin(admin)).await;
    store.close().await;
    let devices = devices?;
    if json {
        let rows: Vec<serde_json::Value> = devices
            .iter()
            .map(|d| {
                serde_json::json!({
                    "id": d.id.to_string(),
                    "tenant": d.tenant_name,
                    "site": d.site_name,
                    "address": d.address,
                    "api_port": d.api_port,
                    "api_tls": d.api_tls,
                    "state": d.state.as_str(),
                    "state_reason": d.state_reason,
                    "state_since_ms": d.state_since_ms,
                    "identity": d.identity,
                    "version": d.version,
                    "channel": d.channel,
                    "board": d.board_name,
                    "uptime_secs": d.uptime_secs,
                    "cpu_load": d.cpu_load,
                    "free_memory": d.free_memory,
                    "total_memory": d.total_memory,
                    "firmware": d.current_firmware,
                    "upgrade_firmware": d.upgrade_firmware,
                    "latest_version": d.latest_version,
                    "update_available": d.update_available,
                    "last_poll_ms": d.last_poll_ms,
                    "agent": d.agent_id,
                    "api_tls_pin": d.api_tls_pin,
                    "presented_tls_fingerprint": d.presented_tls_fingerprint,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if devices.is_empty() {
        println!("No devices. Add one with `outpost-collector device add --tenant T --site S ADDRESS --user NAME`.");
        return Ok(());
    }
    println!(
        "{:<36}  {:<14} {:<14} {:<21} {:<18} {:<18} {:<16} {:>4}",
        "ID", "TENANT", "SITE", "ADDRESS", "IDENTITY", "STATE", "VERSION", "CPU"
    );
    for d in devices {
        println!(
            "{:<36}  {:<14} {:<14} {:<21} {:<18} {:<18} {:<16} {:>4}",
            d.id,
            d.tenant_name,
            d.site_name,
            format!("{}:{}", d.address, d.api_port),
            d.identity,
            d.state.describe(),
            d.version,
            d.cpu_load.map(|c| format!("{c}%")).unwrap_or_default()
        );
        if !d.state_reason.is_empty() && d.state.as_str() != "up" {
            println!("    {}", d.state_reason);
        }
    }
    Ok(())
}

fn parse(id: &str) -> Result<DeviceId> {
    id.parse().map_err(|_| anyhow::anyhow!("{id:?} is not a device id"))
}

async fn tenant_of(store: &Store, admin: &AdminScope, id: DeviceId) -> Result<outpost_certs::TenantId> {
    match store.device(&Viewer::Admin(*admin), id).await {
        Ok(d) => Ok(d.tenant),
        Err(StoreError::NotFound(_)) => bail!("no device with id {id}"),
        Err(e) => Err(e.into()),
    }
}

/// `device delete`.
pub async fn device_delete(location: &Location, id: &str) -> Result<()> {
    let id = parse(id)?;
    let (store, admin) = open(location).await?;
    let result = async {
        let tenant = tenant_of(&store, &admin, id).await?;
        store
            .delete_device(&admin.tenant_scope(tenant), id, &Actor::local_operator())
            .await?;
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result?;
    println!("Deleted device {id}; its agent stops polling it.");
    Ok(())
}

/// What an operator can accept in place of a device's pin.
#[derive(Clone, Copy, Debug)]
enum Acceptable {
    Certificate,
    HostKey,
}

/// `device accept-certificate`.
pub async fn device_accept_certificate(location: &Location, id: &str) -> Result<()> {
    accept(location, id, Acceptable::Certificate).await
}

/// `device accept-host-key`.
pub async fn device_accept_host_key(location: &Location, id: &str) -> Result<()> {
    accept(location, id, Acceptable::HostKey).await
}

async fn accept(location: &Location, id: &str, what: Acceptable) -> Result<()> {
    let id = parse(id)?;
    let (store, admin) = open(location).await?;
    let result = async {
        let tenant = tenant_of(&store, &admin, id).await?;
        let scope = admin.tenant_scope(tenant);
        let accepted = match what {
            Acceptable::Certificate => {
                store
                    .accept_device_certificate(&scope, id, &Actor::local_operator())
                    .await
            }
            Acceptable::HostKey => store.accept_device_host_key(&scope, id, &Actor::local_operator()).await,
        };
        match accepted {
            Ok(fp) => Ok(fp),
            Err(StoreError::Conflict(why)) => bail!("{why}"),
            Err(e) => Err(e.into()),
        }
    }
    .await;
    store.close().await;
    let fp = result?;
    match what {
        Acceptable::Certificate => println!("Device {id} now trusts the API-SSL certificate sha256 {fp}."),
        Acceptable::HostKey => {
            println!("Device {id} now trusts the SSH host key sha256 {fp}; its agent backs it up again.")
        }
    }
    Ok(())
}

/// The RouterOS password: OUTPOST_ROS_PASSWORD, else a prompt (not echoed).
pub fn ros_password() -> Result<String> {
    match std::env::var("OUTPOST_ROS_PASSWORD") {
        Ok(p) => Ok(p),
        Err(std::env::VarError::NotUnicode(_)) => bail!("OUTPOST_ROS_PASSWORD is not valid UTF-8"),
        Err(std::env::VarError::NotPresent) => {
            use std::io::IsTerminal as _;
            if !std::io::stdin().is_terminal() {
                bail!("no password: set OUTPOST_ROS_PASSWORD (standard input is not a terminal to prompt on)");
            }
            rpassword::prompt_password("RouterOS password: ").context("reading the password")
        }
    }
}
