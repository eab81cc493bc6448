//! `outpost-agent import-nmap FILE.xml`: an nmap scan (`nmap -oX`) into the
//! agent's inventory reports. The file is parsed completely first, so a
//! malformed one is refused with the position of the fault and nothing is
//! queued; a good one is copied into the data directory's import queue
//! (written aside, then renamed into place), where the running agent picks
//! it up, appends its hosts to the outbox in one commit and deletes it.
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use outpost_discovery::nmap_xml::{self, HostState};

use super::service::IMPORT_DIR;

/// What was queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// Hosts nmap found up.
    pub hosts_up: usize,
    /// Hosts in the file.
    pub hosts: usize,
}

/// Checks `file` and queues it for the agent of `data_dir`.
pub fn import_nmap(data_dir: &Path, file: &Path) -> Result<Queued> {
    if !data_dir.join(crate::config::CONFIG_FILE).exists() {
        bail!(
            "{} holds no enrolled agent: enroll first, or give --data-dir",
            data_dir.display()
        );
    }
    let scan = nmap_xml::read_file(file).with_context(|| format!("{} was not imported", file.display()))?;
    let xml = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let queue = data_dir.join(IMPORT_DIR);
    std::fs::create_dir_all(&queue).with_context(|| format!("creating {}", queue.display()))?;
    let name = format!("{:013}-{}", crate::now_ms(), uuid::Uuid::new_v4());
    let aside = queue.join(format!("{name}.part"));
    let mut f = std::fs::File::create(&aside).with_context(|| format!("creating {}", aside.display()))?;
    f.write_all(&xml)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", aside.display()))?;
    drop(f);
    // The agent only reads `.xml` files: it never sees a half-written one.
    std::fs::rename(&aside, queue.join(format!("{name}.xml"))).context("queueing the import")?;
    Ok(Queued {
        hosts_up: scan.hosts.iter().filter(|h| h.state == HostState::Up).count(),
        hosts: scan.hosts.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_file_names_the_position_and_queues_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("agent.toml"), "collector = \"c:1\"\n").unwrap();
        let bad = dir.path().join("bad.xml");
        std::fs::write(
            &bad,
            "<nmaprun>\n<host><status state=\"up\"/>\n<address addr=\"10.0.0.1\" addrtype=\"ipv4\"></host>",
        )
        .unwrap();
        let err = format!("{:#}", import_nmap(dir.path(), &bad).unwrap_err());
        assert!(err.contains("line 3"), "{err}");
        assert!(!dir.path().join(IMPORT_DIR).exists(), "nothing queued");

        // Cut short after a whole host: refused too, with where it ends.
        let cut = dir.path().join("cut.xml");
        std::fs::write(
            &cut,
            "<nmaprun>\n<host><status state=\"up\"/><address addr=\"10.0.0.1\" addrtype=\"ipv4\"/></host>\n<host><sta",
        )
        .unwrap();
        let err = format!("{:#}", import_nmap(dir.path(), &cut).unwrap_err());
        assert!(err.contains("line 3") && err.contains("nothing was imported"), "{err}");
        assert!(!dir.path().join(IMPORT_DIR).exists(), "nothing queued");

        let good = dir.path().join("good.xml");
        std::fs::write(
            &good,
            r#"<nmaprun><host><status state="up"/><address addr="10.0.0.1" addrtype="ipv4"/></host>
<host><status state="down"/><address addr="10.0.0.2" addrtype="ipv4"/></host><runstats/></nmaprun>"#,
        )
        .unwrap();
        let q = import_nmap(dir.path(), &good).unwrap();
        assert_eq!((q.hosts_up, q.hosts), (1, 2));
        let queued: Vec<_> = std::fs::read_dir(dir.path().join(IMPORT_DIR)).unwrap().collect();
        assert_eq!(queued.len(), 1);
    }
}
