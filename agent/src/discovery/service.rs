//! Discovery jobs in the running agent. The collector sends the site's jobs
//! (targets, ports, rate, schedule, SNMP credentials, which stay in memory
//! only); without any, the agent scans its own connected networks hourly
//! (`discovery_default_job`). A job runs on its schedule and when the
//! collector asks ("scan now"), one scan at a time. Findings go through the
//! outbox like every other observation: `DiscoveredHosts` in chunks, then one
//! `ScanFinished`; progress goes straight to the uplink, unsequenced.
//!
//! nmap XML files queued by `outpost-agent import-nmap` in the data
//! directory's `nmap-import/` are picked up here too, appended to the outbox
//! in one commit, and only then deleted.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use outpost_discovery::icmp::Pinger;
use outpost_discovery::scan::{self, MndpOptions, Progress, ScanOptions};
use outpost_discovery::{ports, snmp, targets};
use outpost_proto::agent_v1::observation::Body;
use outpost_proto::agent_v1::{
    DiscoveryAssignment, DiscoveryJob, ScanNow, ScanProgress, SnmpCredential, snmp_credential,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::records;
use crate::outbox::{Outbox, blocking};
use crate::routeros::sink::ReportSink;

/// Id of the job the agent makes up when the collector assigns none.
pub const DEFAULT_JOB: &str = "default";
/// Folder of the data directory holding queued nmap imports.
pub const IMPORT_DIR: &str = "nmap-import";
/// How often the import folder is looked at.
const IMPORT_POLL: Duration = Duration::from_secs(2);

/// Commands from the collector.
#[derive(Debug)]
pub enum DiscoveryCommand {
    /// The site's jobs, replacing the previous ones.
    Assign(DiscoveryAssignment),
    /// Run a job now.
    ScanNow(ScanNow),
}

/// The agent's own discovery settings (agent.toml).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Scan the connected networks when the collector assigns no job.
    pub default_job: bool,
    /// Seconds between runs of the default job.
    pub default_interval: Duration,
    /// Probes per second when a job says 0.
    pub rate_pps: u32,
    /// How long an ICMP echo is waited for, per host.
    pub ping_timeout: Duration,
    /// Addresses one job may cover.
    pub max_addresses: usize,
    /// Listen for MNDP during scans (UDP 5678) and ask routers to announce.
    pub mndp: bool,
    /// From receiving a job to its first run.
    pub first_run: Duration,
    /// Run nmap with these arguments after each scheduled scan; none: never.
    pub nmap_args: Option<Vec<String>>,
}

struct Job {
    spec: DiscoveryJob,
    next: Option<Instant>,
}

/// The discovery service.
pub struct Discovery {
    pub(crate) sink: ReportSink,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) signals: Arc<crate::signals::Signals>,
    pub(crate) progress: mpsc::Sender<ScanProgress>,
    pub(crate) settings: Settings,
    pub(crate) data_dir: PathBuf,
    pub(crate) stop: CancellationToken,
}

impl Discovery {
    fn default_jobs(&self) -> Vec<Job> {
        if !self.settings.default_job {
            return Vec::new();
        }
        vec![Job {
            spec: DiscoveryJob {
                job_id: DEFAULT_JOB.into(),
                interval_secs: u32::try_from(self.settings.default_interval.as_secs()).unwrap_or(u32::MAX),
                ..DiscoveryJob::default()
            },
            // Not at start: an agent restarting in a loop must not scan in one.
            next: Some(Instant::now() + self.settings.default_interval.min(Duration::from_secs(300))),
        }]
    }

    /// Runs until stopped.
    pub async fn run(self, mut commands: mpsc::Receiver<DiscoveryCommand>) {
        let pinger = Pinger::open();
        for w in &pinger.warnings {
            tracing::warn!("discovery: {w}");
        }
        let mut jobs = self.default_jobs();
        let mut pending: Vec<ScanNow> = Vec::new();
        let mut import_tick = tokio::time::interval(IMPORT_POLL);
        loop {
            let next = jobs.iter().filter_map(|j| j.next).min();
            let due = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            if let Some(now) = pending.pop() {
                let job = jobs
                    .iter()
                    .find(|j| now.job_id.is_empty() || j.spec.job_id == now.job_id)
                    .map(|j| j.spec.clone());
                match job {
                    Some(spec) => {
                        self.scan(&spec, &now.scan_id, &pinger).await;
                    }
                    None => {
                        tracing::warn!(scan = %now.scan_id, job = %now.job_id, "scan asked for an unknown discovery job");
                        self.finish_failed(&now.scan_id, &now.job_id, "no such discovery job on this agent")
                            .await;
                    }
                }
                continue;
            }
            tokio::select! {
                () = self.stop.cancelled() => return,
                command = commands.recv() => match command {
                    None => return,
                    Some(DiscoveryCommand::Assign(a)) => {
                        jobs = if a.jobs.is_empty() {
                            self.default_jobs()
                        } else {
                            a.jobs
                                .into_iter()
                                .map(|spec| {
                                    let next =
                                        (spec.interval_secs > 0).then(|| Instant::now() + self.settings.first_run);
                                    Job { spec, next }
                                })
                                .collect()
                        };
                        tracing::info!(jobs = jobs.len(), "discovery jobs assigned");
                    }
                    Some(DiscoveryCommand::ScanNow(s)) => pending.push(s),
                },
                () = due => {
                    let now = Instant::now();
                    let Some(i) = jobs.iter().position(|j| j.next.is_some_and(|at| at <= now)) else { continue };
                    let spec = jobs[i].spec.clone();
                    jobs[i].next = Some(now + Duration::from_secs(u64::from(spec.interval_secs.max(60))));
                    let scan_id = uuid::Uuid::new_v4().to_string();
                    if let Some(targets) = self.scan(&spec, &scan_id, &pinger).await {
                        self.nmap(&targets).await;
                    }
                }
                _ = import_tick.tick() => self.imports().await,
            }
        }
    }

    /// Options for `spec`, or why it cannot run.
    async fn options(&self, spec: &DiscoveryJob) -> Result<(ScanOptions, Vec<String>), String> {
        let mut warnings = Vec::new();
        let targets = if spec.targets.is_empty() {
            let connected = outpost_discovery::neighbours::connected_networks()
                .await
                .map_err(|e| format!("no targets and this host's networks are unknown: {e}"))?;
            let (t, w) =
                targets::expand_connected(&connected, self.settings.max_addresses).map_err(|e| e.to_string())?;
            warnings = w;
            t
        } else {
            targets::expand(&spec.targets, self.settings.max_addresses).map_err(|e| e.to_string())?
        };
        let mut opts = ScanOptions::new(targets);
        if !spec.ports.is_empty() {
            let mut list: Vec<u16> = spec
                .ports
                .iter()
                .filter_map(|p| u16::try_from(*p).ok().filter(|p| *p > 0))
                .collect();
            list.sort_unstable();
            list.dedup();
            opts.ports = list;
        } else {
            opts.ports = ports::default_ports();
        }
        opts.rate_pps = if spec.rate_pps > 0 {
            spec.rate_pps
        } else {
            self.settings.rate_pps
        };
        opts.ping_timeout = self.settings.ping_timeout;
        opts.snmp = spec.snmp.iter().filter_map(|c| credentials(c, &mut warnings)).collect();
        if self.settings.mndp {
            opts.mndp = Some(MndpOptions::default());
        }
        Ok((opts, warnings))
    }

    /// Runs a job; the targets it covered, when it ran.
    async fn scan(&self, spec: &DiscoveryJob, scan_id: &str, pinger: &Pinger) -> Option<Vec<String>> {
        let started_ms = crate::now_ms();
        let (opts, mut warnings) = match self.options(spec).await {
            Ok(o) => o,
            Err(why) => {
                tracing::warn!(job = %spec.job_id, %why, "discovery job cannot run");
                self.finish_failed(scan_id, &spec.job_id, &why).await;
                return None;
            }
        };
        tracing::info!(job = %spec.job_id, scan = %scan_id, addresses = opts.targets.addresses.len(), "discovery scan started");
        let progress = self.progress.clone();
        let id = scan_id.to_owned();
        let report = move |p: Progress| {
            // Progress is worth nothing late: dropped when the uplink is busy.
            let _ = progress.try_send(ScanProgress {
                scan_id: id.clone(),
                phase: p.phase.into(),
                done: u32::try_from(p.done).unwrap_or(u32::MAX),
                total: u32::try_from(p.total).unwrap_or(u32::MAX),
                hosts_found: u32::try_from(p.hosts_found).unwrap_or(u32::MAX),
            });
        };
        let mut outcome = scan::run(&opts, pinger, &report).await;
        warnings.append(&mut outcome.stats.warnings);
        let targets: Vec<String> = opts.targets.nets.iter().map(ToString::to_string).collect();
        let ports: Vec<u32> = opts.ports.iter().map(|p| u32::from(*p)).collect();
        let mut bodies: Vec<Body> = records::chunks(scan_id, &spec.job_id, &ports, &outcome.hosts)
            .into_iter()
            .map(Body::DiscoveredHosts)
            .collect();
        bodies.push(Body::ScanFinished(records::finished(
            scan_id,
            &spec.job_id,
            "scan",
            targets.clone(),
            started_ms,
            &outcome.stats,
            warnings,
        )));
        let at = crate::now_ms();
        for body in bodies {
            if !self.sink.send(at, body).await {
                return None;
            }
        }
        tracing::info!(
            job = %spec.job_id,
            scan = %scan_id,
            hosts = outcome.stats.hosts_up,
            open_ports = outcome.stats.open_ports,
            ms = outcome.stats.duration_ms,
            "discovery scan finished"
        );
        Some(targets)
    }

    /// The operator's scheduled nmap run over `targets`, imported like a
    /// file; bounded to one hour. A run that fails, dies or is cut short is
    /// refused whole and reported to the collector as a failed import.
    async fn nmap(&self, targets: &[String]) {
        let Some(args) = &self.settings.nmap_args else { return };
        let mut cmd = tokio::process::Command::new("nmap");
        cmd.args(["-oX", "-"]).args(args).args(targets).kill_on_drop(true);
        cmd.stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let run = tokio::time::timeout(Duration::from_secs(3600), cmd.output()).await;
        let refused = match run {
            Ok(Ok(out)) => match scheduled_nmap_records(&out) {
                Ok((bodies, hosts)) => {
                    let at = crate::now_ms();
                    for body in bodies {
                        if !self.sink.send(at, body).await {
                            return;
                        }
                    }
                    tracing::info!(hosts, "scheduled nmap imported");
                    return;
                }
                Err(why) => why,
            },
            Ok(Err(e)) => format!("the scheduled nmap could not run (is nmap installed?): {e}"),
            Err(_) => "the scheduled nmap took longer than an hour and was stopped; nothing was imported".into(),
        };
        tracing::warn!(why = %refused, "scheduled nmap refused");
        let scan_id = uuid::Uuid::new_v4().to_string();
        self.report_failed(&scan_id, records::NMAP_JOB, records::NMAP_JOB, &refused)
            .await;
    }

    async fn finish_failed(&self, scan_id: &str, job_id: &str, why: &str) {
        self.report_failed(scan_id, job_id, "scan", why).await;
    }

    async fn report_failed(&self, scan_id: &str, job_id: &str, source: &str, why: &str) {
        let now = crate::now_ms();
        let finished = outpost_proto::agent_v1::ScanFinished {
            scan_id: scan_id.into(),
            job_id: job_id.into(),
            source: source.into(),
            started_ms: now,
            finished_ms: now,
            partial: true,
            warnings: vec![why.into()],
            ..Default::default()
        };
        self.sink.send(now, Body::ScanFinished(finished)).await;
    }

    /// Sends the queued nmap imports, oldest first; each file is deleted once
    /// its records are committed to the outbox.
    async fn imports(&self) {
        let dir = self.data_dir.join(IMPORT_DIR);
        let Ok(entries) = std::fs::read_dir(&dir) else { return };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "xml"))
            .collect();
        files.sort();
        for file in files {
            match import_bodies(&file).await {
                Ok(bodies) => {
                    let at = crate::now_ms();
                    let items: Vec<(i64, Body)> = bodies.into_iter().map(|b| (at, b)).collect();
                    let n = items.len();
                    match blocking(&self.outbox, move |o| o.append(items)).await {
                        Ok(_) => {
                            self.signals.new_data.notify_one();
                            tracing::info!(file = %file.display(), records = n, "nmap import sent to the outbox");
                            if let Err(e) = std::fs::remove_file(&file) {
                                tracing::warn!(file = %file.display(), error = %e, "cannot remove an imported nmap file");
                            }
                        }
                        Err(e) => {
                            tracing::error!(file = %file.display(), error = %e, "recording an nmap import failed")
                        }
                    }
                }
                Err(e) => {
                    // Checked when it was queued; set aside rather than retried forever.
                    let aside = file.with_extension("rejected");
                    tracing::warn!(file = %file.display(), error = %e, "queued nmap file unreadable; set aside");
                    let _ = std::fs::rename(&file, aside);
                }
            }
        }
    }
}

/// The records of a scheduled nmap run and how many hosts it held, or why
/// it is refused: nmap exited with an error or was killed, or its output is
/// not a whole XML document (a run that died mid-way ends early).
fn scheduled_nmap_records(out: &std::process::Output) -> Result<(Vec<Body>, usize), String> {
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = stderr.trim();
        return Err(format!(
            "the scheduled nmap {}{}{}; nothing was imported",
            match out.status.code() {
                Some(code) => format!("exited with status {code}"),
                None => "was killed by a signal".into(),
            },
            if stderr.is_empty() { "" } else { ": " },
            stderr.chars().take(400).collect::<String>()
        ));
    }
    let scan = outpost_discovery::nmap_xml::parse(&out.stdout)
        .map_err(|e| format!("the scheduled nmap's output was refused: {e}"))?;
    Ok((records::from_nmap(&scan), scan.hosts.len()))
}

/// The records of one nmap XML file.
pub async fn import_bodies(file: &Path) -> Result<Vec<Body>, String> {
    let path = file.to_owned();
    let scan = tokio::task::spawn_blocking(move || outpost_discovery::nmap_xml::read_file(&path))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(records::from_nmap(&scan))
}

fn credentials(c: &SnmpCredential, warnings: &mut Vec<String>) -> Option<snmp::Credentials> {
    let made = match c.kind.as_ref()? {
        snmp_credential::Kind::Community(community) => Ok(snmp::Credentials::v2c(community.clone())),
        snmp_credential::Kind::V3(u) => v3(u),
    };
    match made {
        Ok(c) => Some(c),
        Err(e) => {
            warnings.push(format!("an SNMP credential was skipped: {e}"));
            None
        }
    }
}

fn v3(u: &outpost_proto::agent_v1::SnmpV3User) -> Result<snmp::Credentials, String> {
    let creds = match (u.auth_protocol.is_empty(), u.priv_protocol.is_empty()) {
        (true, _) => snmp::Credentials::v3_no_auth(u.user.clone()),
        (false, true) => snmp::Credentials::v3_auth_no_priv(
            u.user.clone(),
            u.auth_protocol.parse().map_err(|e| format!("{e}"))?,
            u.auth_password.clone(),
        ),
        (false, false) => snmp::Credentials::v3_auth_priv(
            u.user.clone(),
            u.auth_protocol.parse().map_err(|e| format!("{e}"))?,
            u.auth_password.clone(),
            u.priv_protocol.parse().map_err(|e| format!("{e}"))?,
            u.priv_password.clone(),
        ),
    };
    creds.validate().map_err(|e| e.to_string())?;
    Ok(creds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_proto::agent_v1::SnmpV3User;

    #[test]
    fn snmp_credentials_from_the_collector_are_checked_and_bad_ones_named() {
        let mut warnings = Vec::new();
        let community = SnmpCredential {
            kind: Some(snmp_credential::Kind::Community("public".into())),
        };
        assert!(matches!(
            credentials(&community, &mut warnings),
            Some(snmp::Credentials::V2c { .. })
        ));
        let user = |auth: &str, auth_password: &str, privacy: &str| SnmpCredential {
            kind: Some(snmp_credential::Kind::V3(SnmpV3User {
                user: "outpost".into(),
                auth_protocol: auth.into(),
                auth_password: auth_password.into(),
                priv_protocol: privacy.into(),
                priv_password: "privpass1".into(),
            })),
        };
        assert!(credentials(&user("sha", "authpass1", "aes"), &mut warnings).is_some());
        assert!(credentials(&user("sha", "authpass1", ""), &mut warnings).is_some());
        assert!(credentials(&user("", "", ""), &mut warnings).is_some());
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(credentials(&user("rot13", "authpass1", "aes"), &mut warnings).is_none());
        assert!(credentials(&user("sha", "short", "aes"), &mut warnings).is_none());
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings.iter().all(|w| w.starts_with("an SNMP credential was skipped")));
        assert!(credentials(&SnmpCredential { kind: None }, &mut warnings).is_none());
    }

    #[test]
    fn a_scheduled_nmap_that_died_or_was_cut_short_is_refused_whole() {
        let run = |script: &str| std::process::Command::new("sh").args(["-c", script]).output().unwrap();
        let host = r#"<host><status state="up"/><address addr="10.0.0.1" addrtype="ipv4"/></host>"#;
        // Killed after writing a whole host.
        let out = run(&format!("printf '<nmaprun>\\n{host}\\n<ho'; kill -9 $$"));
        let why = scheduled_nmap_records(&out).unwrap_err();
        assert!(
            why.contains("killed by a signal") && why.contains("nothing was imported"),
            "{why}"
        );
        // Exited as if fine, but its output stops mid-way.
        let out = run(&format!("printf '<nmaprun>\\n{host}\\n<ho'"));
        let why = scheduled_nmap_records(&out).unwrap_err();
        assert!(
            why.contains("line 3") && why.contains("before </nmaprun>") && why.contains("nothing was imported"),
            "{why}"
        );
        let out = run("echo 'Failed to resolve \"nowhere\"' >&2; exit 1");
        let why = scheduled_nmap_records(&out).unwrap_err();
        assert!(why.contains("status 1") && why.contains("Failed to resolve"), "{why}");
        // A whole document is imported.
        let out = run(&format!("printf '<nmaprun>{host}<runstats/></nmaprun>'"));
        let (bodies, hosts) = scheduled_nmap_records(&out).unwrap();
        assert_eq!((bodies.len(), hosts), (2, 1));
    }
}
