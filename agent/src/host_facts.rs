//! The agent's own host facts: its first observation source and its heartbeat.
use outpost_proto::agent_v1::HostFacts;

/// Collects host facts now. `outbox_depth` is what the outbox held just before.
pub fn collect(outbox_depth: u64) -> HostFacts {
    let hostname = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut addresses: Vec<String> = if_addrs::get_if_addrs()
        .map(|ifs| {
            ifs.into_iter()
                .filter(|i| !i.is_loopback())
                .map(|i| format!("{}/{}", i.ip(), i.name))
                .collect()
        })
        .unwrap_or_default();
    addresses.sort();
    addresses.truncate(64);
    let (os, os_version) = os_release();
    HostFacts {
        hostname,
        os,
        os_version,
        kernel: read_trimmed("/proc/sys/kernel/osrelease"),
        arch: std::env::consts::ARCH.to_owned(),
        addresses,
        agent_version: crate::VERSION.to_owned(),
        outbox_depth,
        uptime_seconds: read_trimmed("/proc/uptime")
            .split_whitespace()
            .next()
            .and_then(|s| s.parse::<f64>().ok())
            .map(|s| s as u64)
            .unwrap_or(0),
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// (NAME, VERSION_ID) from os-release, or the platform name.
fn os_release() -> (String, String) {
    let text = std::fs::read_to_string("/etc/os-release").or_else(|_| std::fs::read_to_string("/usr/lib/os-release"));
    let Ok(text) = text else {
        return (std::env::consts::OS.to_owned(), String::new());
    };
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_default()
    };
    let name = field("NAME");
    (
        if name.is_empty() {
            std::env::consts::OS.to_owned()
        } else {
            name
        },
        field("VERSION_ID"),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_something_about_this_host() {
        let f = super::collect(7);
        assert!(!f.hostname.is_empty());
        assert!(!f.os.is_empty());
        assert_eq!(f.outbox_depth, 7);
        assert_eq!(f.agent_version, crate::VERSION);
    }
}
