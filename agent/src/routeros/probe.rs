//! `outpost-agent probe-routeros`: what an installer runs to check a router
//! and its credentials from the agent's host, before adding it as a device.
use std::time::Duration;

use outpost_routeros::command::{identity, resource, routerboard};
use outpost_routeros::{Client, ClientConfig, Error, Fingerprint, Transport};

/// What the probe learnt.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// `/system/identity` name.
    pub identity: String,
    /// Version as the router prints it, e.g. `7.16.2 (stable)`.
    pub version: String,
    /// Board name.
    pub board: String,
    /// Uptime.
    pub uptime: Option<Duration>,
    /// CPU load, percent.
    pub cpu_load: Option<u64>,
    /// Free and total memory, bytes.
    pub memory: (Option<u64>, Option<u64>),
    /// Serial number and firmware, when the board has a RouterBOOT.
    pub serial: Option<String>,
    /// The API-SSL certificate's fingerprint (pin it).
    pub tls_fingerprint: Option<Fingerprint>,
}

/// Connects, logs in and reads the basics.
pub async fn probe(
    host: &str,
    port: Option<u16>,
    tls: bool,
    pin: Option<Fingerprint>,
    user: &str,
    password: &str,
) -> Result<ProbeReport, Error> {
    let mut cfg = if tls {
        ClientConfig::tls(host, user, password, pin)
    } else {
        ClientConfig::plain(host, user, password)
    };
    if let Some(port) = port {
        cfg.port = port;
    }
    debug_assert!(matches!(cfg.transport, Transport::Plain) != tls);
    let (client, info) = Client::connect(cfg).await?;
    let (res, name, board) = futures::try_join!(resource::fetch(&client), identity::fetch(&client), async {
        match routerboard::fetch(&client).await {
            Ok(b) => Ok(b),
            Err(e) if e.is_no_such_command() => Ok(None),
            Err(e) => Err(e),
        }
    })?;
    client.close();
    Ok(ProbeReport {
        identity: name.unwrap_or_default(),
        version: res.version_text.unwrap_or_default(),
        board: res.board_name.unwrap_or_default(),
        uptime: res.uptime,
        cpu_load: res.cpu_load,
        memory: (res.free_memory, res.total_memory),
        serial: board.and_then(|b| b.serial_number),
        tls_fingerprint: info.tls_fingerprint,
    })
}

/// `3d04h05m06s`-style text for people.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, h, m, sec) = (s / 86_400, s / 3_600 % 24, s / 60 % 60, s % 60);
    if days > 0 {
        format!("{days}d{h:02}h{m:02}m{sec:02}s")
    } else {
        format!("{h}h{m:02}m{sec:02}s")
    }
}

/// Bytes for people (MiB).
pub fn human_bytes(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

impl std::fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "identity:  {}", self.identity)?;
        writeln!(f, "version:   {}", self.version)?;
        writeln!(f, "board:     {}", self.board)?;
        if let Some(serial) = &self.serial {
            writeln!(f, "serial:    {serial}")?;
        }
        if let Some(u) = self.uptime {
            writeln!(f, "uptime:    {}", human_duration(u))?;
        }
        if let Some(c) = self.cpu_load {
            writeln!(f, "cpu:       {c}%")?;
        }
        if let (Some(free), Some(total)) = self.memory {
            writeln!(f, "memory:    {} free of {}", human_bytes(free), human_bytes(total))?;
        }
        if let Some(fp) = &self.tls_fingerprint {
            writeln!(f, "api-ssl certificate sha256: {fp}")?;
        }
        Ok(())
    }
}
