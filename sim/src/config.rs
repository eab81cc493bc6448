//! How a fleet is laid out: how many devices, where, which RouterOS, which
//! credentials and ports.
use std::net::Ipv4Addr;

/// Most devices one simulator runs.
pub const MAX_DEVICES: usize = 10_000;
/// Which RouterOS lines the fleet runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RosMix {
    /// RouterOS 6 only.
    #[value(name = "6")]
    V6,
    /// RouterOS 7 only (several 7.x releases).
    #[value(name = "7")]
    V7,
    /// About 40 % RouterOS 6, the rest RouterOS 7.
    Mixed,
}

/// How to lay out a fleet.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Number of devices, 1 to [`MAX_DEVICES`].
    pub devices: usize,
    /// First device address; the others count up (skipping .0 and .255).
    pub first_ip: Ipv4Addr,
    /// RouterOS lines.
    pub ros: RosMix,
    /// Seed for everything generated.
    pub seed: u64,
    /// API user.
    pub user: String,
    /// API password.
    pub password: String,
    /// API port on every device (0: any free port, per device).
    pub api_port: u16,
    /// API-SSL port on every device (0: any free port, per device).
    pub api_ssl_port: u16,
    /// SSH port on every device (0: any free port, per device). The default
    /// is 2222, as 22 needs privileges and is often the host's own sshd.
    pub ssh_port: u16,
    /// A byte echo on this port of every device (WinBox's is 8291), for
    /// tunnels to carry; `None`: not served.
    pub winbox_echo_port: Option<u16>,
    /// Neighbour links per device.
    pub neighbors_per_device: usize,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            devices: 1,
            first_ip: Ipv4Addr::new(127, 0, 1, 1),
            ros: RosMix::Mixed,
            seed: 1,
            user: "admin".to_owned(),
            password: "admin".to_owned(),
            api_port: 8728,
            api_ssl_port: 8729,
            ssh_port: 2222,
            winbox_echo_port: None,
            neighbors_per_device: 2,
        }
    }
}
