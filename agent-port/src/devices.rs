//! Devices for a connected agent: the collector sends each agent the complete
//! list of devices it polls, with passwords opened from the vault (they
//! travel only inside this mTLS stream; the agent keeps them in memory), on
//! connect and again whenever the list changes.
use outpost_certs::AgentId;
use outpost_proto::agent_v1::{DeviceAssignment, ManagedDevice};
use outpost_store::devices::AssignedDevice;
use outpost_store::devices::DeviceId;
use outpost_store::{AgentScope, Store, StoreError, TenantScope};
use outpost_vault::Vault;

/// Default poll interval when a stored one is out of range.
const DEFAULT_INTERVAL_SECS: u32 = 60;

/// The wire form of one device, or why it cannot be sent (its password does
/// not open: a vault key mismatch or a damaged row, logged by the caller).
pub(super) fn managed(vault: &Vault, d: &AssignedDevice) -> Result<ManagedDevice, String> {
    let tenant = vault.tenant(&d.tenant.to_string());
    let id = d.id.to_string();
    let password = tenant
        .open_device_password(&id, &d.password_sealed)
        .map_err(|e| format!("the password of device {id} cannot be opened: {e}"))?;
    let pin = |hex_pin: &Option<String>| hex_pin.as_deref().and_then(|h| hex::decode(h).ok()).unwrap_or_default();
    Ok(ManagedDevice {
        device_id: id.clone(),
        address: d.address.clone(),
        api_port: u32::from(d.api_port),
        api_tls: d.api_tls,
        username: d.username.clone(),
        password: password.to_string(),
        api_tls_pin_sha256: pin(&d.api_tls_pin),
        poll_interval_secs: if d.poll_interval_secs == 0 {
            DEFAULT_INTERVAL_SECS
        } else {
            d.poll_interval_secs
        },
        ssh_port: u32::from(d.ssh_port),
        ssh_host_key_sha256: pin(&d.ssh_host_key_pin),
        backup_key: tenant.backup_key(&id).as_bytes().to_vec(),
    })
}

/// The agent's assignment; devices whose password does not open are left out
/// and logged.
pub(super) fn assignment(vault: &Vault, scope: &AgentScope, devices: &[AssignedDevice]) -> DeviceAssignment {
    let mut out = DeviceAssignment::default();
    for d in devices {
        match managed(vault, d) {
            Ok(m) => out.devices.push(m),
            Err(error) => {
                tracing::error!(agent = %scope.agent(), device = %d.id, %error, "device left out of the assignment")
            }
        }
    }
    out
}

/// The agent polling `device`, or why there is none to ask.
pub(super) async fn agent_of(store: &Store, scope: &TenantScope, device: DeviceId) -> Result<AgentId, String> {
    match store.device_agent(scope, device).await {
        Ok(Some(agent)) => Ok(agent),
        Ok(None) => Err("no agent polls this device yet".into()),
        Err(StoreError::NotFound(_)) => Err("device not found".into()),
        Err(e) => Err(format!("looking up the device failed: {e}")),
    }
}
