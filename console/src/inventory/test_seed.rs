//! What the inventory's tests share: a tenant whose agent reported four
//! scans (a router to adopt, a conflict, a gone host), a tenant user's
//! session, forms for handlers called directly, and an [`AgentControl`]
//! that asks for scans the way the collector does.
use std::sync::{Arc, Mutex};

use outpost_certs::{AgentCertificate, AgentId, AgentIdentity, SiteId, TenantId};
use outpost_store::devices::DeviceId;
use outpost_store::ingest::IngestBatch;
use outpost_store::inventory::addr::parse_targets;
use outpost_store::inventory::records::{
    DiscoveryBody, DiscoveryReport, HostRecord, HostsChunk, LldpNeighbor, MndpFacts, PortRecord, ScanFinishedRow,
    SnmpInterface, SnmpRecord,
};
use outpost_store::inventory::views::HostQuery;
use outpost_store::inventory::{HostId, JobId, ScanId};
use outpost_store::scope::Viewer;
use outpost_store::users::Session;
use outpost_store::{AdminScope, AgentScope, Store, TenantScope, now_ms};

use crate::agent_control::{AgentControl, RequestFuture, ScanFuture, ScanProgress, WatchFuture};
use crate::csrf::CsrfForm;
use crate::session::Authenticated;
use crate::tests::{Console, body, enroll, hidden_csrf};

/// A tenant's agent and what its scans found.
pub(crate) struct Seeded {
    pub(crate) agent: AgentScope,
    pub(crate) agent_id: AgentId,
    /// 10.0.0.1: a RouterOS router (API ports, MNDP, MikroTik SNMP).
    pub(crate) router: HostId,
    /// 10.0.0.3, flagged: another MAC answered at its address.
    pub(crate) pc: HostId,
    /// 10.0.0.20, a printer.
    pub(crate) printer: HostId,
    /// 10.0.0.100, gone after three complete scans missed it.
    pub(crate) nas: HostId,
    seq: i64,
}

/// A record for `address` with `mac`, seen by echo.
fn rec(address: &str, mac: &str, vendor: &str, name: &str) -> HostRecord {
    HostRecord {
        address: address.parse().expect("test address"),
        mac: Some(mac.parse().expect("test MAC")),
        vendor: vendor.into(),
        names: if name.is_empty() { Vec::new() } else { vec![name.into()] },
        open_ports: Vec::new(),
        snmp: None,
        mndp: None,
        seen_by: vec!["icmp".into()],
        rtt_us: Some(420),
        os: None,
    }
}

fn port(port: u16, service: &str, product: &str, banner: &str) -> PortRecord {
    PortRecord {
        port,
        protocol: "tcp".into(),
        service: service.into(),
        product: product.into(),
        version: if product.is_empty() {
            String::new()
        } else {
            "7.16".into()
        },
        banner: banner.into(),
    }
}

fn router(tenant: &str) -> HostRecord {
    let mut r = rec(
        "10.0.0.1",
        "02:00:00:00:00:01",
        "Routerboard.com",
        &format!("gw.{tenant}.example"),
    );
    r.open_ports = vec![
        port(22, "ssh", "MikroTik RouterOS sshd", "SSH-2.0-ROSSSH"),
        port(8728, "mikrotik-api", "", ""),
        port(8729, "mikrotik-api-ssl", "", ""),
    ];
    r.snmp = Some(SnmpRecord {
        descr: "RouterOS CCR2004-1G-12S+2XS".into(),
        object_id: "1.3.6.1.4.1.14988.1".into(),
        name: format!("{tenant}-gw"),
        location: "rack 1".into(),
        uptime_ticks: 8_640_000,
        interfaces: vec![SnmpInterface {
            index: 1,
            name: "ether1".into(),
            descr: "ether1".into(),
            alias: "uplink".into(),
            if_type: 6,
            mac: "02:00:00:00:00:01".into(),
            oper_up: true,
            speed_mbps: 1000,
        }],
        lldp: vec![LldpNeighbor {
            local_port: "ether1".into(),
            chassis_id: "02:00:00:00:00:50".into(),
            port_id: "Gi0/1".into(),
            port_descr: "uplink to gw".into(),
            sys_name: "core-sw".into(),
        }],
        error: String::new(),
    });
    r.mndp = Some(MndpFacts {
        identity: format!("{tenant}-gw"),
        mac: "02:00:00:00:00:01".into(),
        version: "7.16.1".into(),
        platform: "MikroTik".into(),
        board: "CCR2004-1G-12S+2XS".into(),
        uptime_secs: 86_400,
        software_id: "ABCD-1234".into(),
        interface: "ether1".into(),
        ipv4: "10.0.0.1".into(),
        ipv6: String::new(),
    });
    r.os = Some(("RouterOS 7".into(), 95));
    r
}

fn printer() -> HostRecord {
    let mut r = rec("10.0.0.20", "02:00:00:00:00:14", "Hewlett Packard", "printer");
    r.open_ports = vec![port(80, "http", "", ""), port(9100, "jetdirect", "", "")];
    r
}

fn pc() -> HostRecord {
    rec("10.0.0.3", "02:00:00:00:00:03", "Dell", "pc-3")
}

impl Seeded {
    /// One complete scan of 10.0.0.0/24 seen at `at` (agent clock).
    async fn scan(&mut self, c: &Console, scan: &str, at: i64, hosts: Vec<HostRecord>, warnings: &[&str]) {
        let found = hosts.len() as i64;
        self.seq += 2;
        let chunk = DiscoveryReport {
            seq: self.seq - 1,
            observed_at_ms: at,
            body: DiscoveryBody::Hosts(HostsChunk {
                scan_id: scan.parse().expect("scan id"),
                job_id: String::new(),
                scanned_ports: vec![22, 80, 8728, 8729, 9100],
                hosts,
            }),
        };
        let end = DiscoveryReport {
            seq: self.seq,
            observed_at_ms: at + 1_000,
            body: DiscoveryBody::Finished(ScanFinishedRow {
                scan_id: scan.parse().expect("scan id"),
                job_id: String::new(),
                source: "scan".into(),
                targets: parse_targets("10.0.0.0/24").expect("targets"),
                started_ms: at - 5_000,
                finished_ms: at + 1_000,
                addresses: 254,
                hosts_found: found,
                partial: false,
                warnings: warnings.iter().map(|w| (*w).to_owned()).collect(),
                icmp: "raw".into(),
                probes_sent: 1_270,
            }),
        };
        self.ingest(c, vec![chunk, end]).await;
    }

    /// Stores `reports` as the agent's next batch.
    pub(super) async fn ingest(&mut self, c: &Console, reports: Vec<DiscoveryReport>) {
        let through = reports.iter().map(|r| r.seq).max().unwrap_or(self.seq);
        self.seq = self.seq.max(through);
        let batch = IngestBatch {
            discovery: reports,
            through_seq: through,
            ..IngestBatch::default()
        };
        c.store.ingest(&self.agent, &batch).await.expect("ingest");
    }

    /// The agent's next sequence number.
    pub(super) fn next_seq(&mut self) -> i64 {
        self.seq += 1;
        self.seq
    }
}

/// A tenant with site "hq", one agent, and four scans (`<tenant>-s1` to
/// `-s4`, as scan ids are unique across tenants): the first two hours
/// ago finds everything; three in the last half hour miss the NAS (gone),
/// and the first of them sees another MAC at the PC's address (conflict).
pub(crate) async fn seed(c: &Console, tenant: &str) -> Seeded {
    let site = c
        .store
        .ensure_site(&AdminScope::for_tests(), tenant, "hq")
        .await
        .expect("site");
    let agent_id = enroll(&c.store, tenant, "hq", &format!("{tenant}-agent")).await;
    let agent = AgentScope::from_certificate(&AgentCertificate {
        identity: AgentIdentity {
            tenant: site.tenant,
            site: site.site,
            agent: agent_id,
        },
        serial: String::new(),
        not_before: 0,
        not_after: 0,
    });
    let mut s = Seeded {
        agent,
        agent_id,
        router: HostId::random(),
        pc: HostId::random(),
        printer: HostId::random(),
        nas: HostId::random(),
        seq: 0,
    };
    let now = now_ms();
    let nas = rec("10.0.0.100", "02:00:00:00:00:64", "Synology", "nas");
    s.scan(
        c,
        &format!("{tenant}-s1"),
        now - 2 * 3_600_000,
        vec![router(tenant), pc(), printer(), nas],
        &[],
    )
    .await;
    let intruder = rec("10.0.0.3", "02:00:00:00:00:99", "", "");
    s.scan(
        c,
        &format!("{tenant}-s2"),
        now - 1_800_000,
        vec![router(tenant), pc(), printer(), intruder],
        &[],
    )
    .await;
    s.scan(
        c,
        &format!("{tenant}-s3"),
        now - 1_200_000,
        vec![router(tenant), pc(), printer()],
        &[],
    )
    .await;
    s.scan(
        c,
        &format!("{tenant}-s4"),
        now - 600_000,
        vec![router(tenant), pc(), printer()],
        &["SNMP timed out on 10.0.0.20"],
    )
    .await;
    let hosts = c
        .store
        .list_hosts(
            &Viewer::Tenant(s.agent.tenant_scope()),
            &HostQuery {
                include_gone: true,
                ..HostQuery::default()
            },
        )
        .await
        .expect("hosts");
    let by_mac = |mac: &str| hosts.iter().find(|h| h.mac == mac).map(|h| h.id).expect(mac);
    s.router = by_mac("02:00:00:00:00:01");
    s.pc = by_mac("02:00:00:00:00:03");
    s.printer = by_mac("02:00:00:00:00:14");
    s.nas = by_mac("02:00:00:00:00:64");
    s
}

/// A session of the seeded tenant's user.
pub(super) fn tenant_session(s: &Seeded) -> Authenticated {
    Authenticated {
        token: "tenant cookie".into(),
        session: Session {
            username: "tenant-user".into(),
            csrf_token: "t".repeat(43),
            viewer: Viewer::Tenant(s.agent.tenant_scope()),
            principal: outpost_store::members::Principal::for_tests(
                "tenant-user",
                false,
                vec![(s.agent.tenant(), outpost_store::members::Role::Admin)],
            ),
            totp_due: false,
        },
        need: outpost_store::members::Role::Viewer,
    }
}

/// A form for a handler called directly, with the session's token.
pub(super) fn form<T: serde::de::DeserializeOwned>(auth: &Authenticated, mut fields: serde_json::Value) -> CsrfForm<T> {
    fields["csrf"] = auth.session.csrf_token.clone().into();
    CsrfForm {
        auth: auth.clone(),
        form: serde_json::from_value(fields).expect("form"),
    }
}

/// The token of the signed-in administrator (any page's forms carry it).
pub(super) async fn admin_csrf(c: &Console, cookie: &str) -> String {
    hidden_csrf(&body(c.get("/devices/new", Some(cookie)).await).await)
}

/// Asks for scans the way the collector does (recording the request, so the
/// scan has its row) and answers the progress it was given.
#[derive(Debug)]
pub(super) struct Scans {
    store: Store,
    /// The agent every request goes to.
    agent: AgentId,
    asked: Mutex<Vec<(TenantId, SiteId, Option<JobId>)>>,
    pub(super) progress: Mutex<Option<ScanProgress>>,
}

impl Scans {
    pub(super) fn new(c: &Console, s: &Seeded) -> Arc<Self> {
        Arc::new(Self {
            store: c.store.clone(),
            agent: s.agent_id,
            asked: Mutex::default(),
            progress: Mutex::default(),
        })
    }

    pub(super) fn asked(&self) -> Vec<(TenantId, SiteId, Option<JobId>)> {
        self.asked.lock().unwrap().clone()
    }
}

impl AgentControl for Scans {
    fn watch(&self, _scope: TenantScope, _device: DeviceId) -> WatchFuture<'_> {
        Box::pin(async { Err("not in this test".to_owned()) })
    }

    fn backup_now(&self, _scope: TenantScope, _device: DeviceId) -> RequestFuture<'_> {
        Box::pin(async { Err("not in this test".to_owned()) })
    }

    fn scan_now(&self, scope: TenantScope, site: SiteId, job: Option<JobId>) -> ScanFuture<'_> {
        self.asked.lock().unwrap().push((scope.tenant(), site, job));
        Box::pin(async move {
            let scan = ScanId::random();
            self.store
                .record_scan_request(&scope, site, &scan, job, self.agent)
                .await
                .map_err(|e| e.to_string())?;
            Ok(scan)
        })
    }

    fn scan_progress(&self, _scope: &TenantScope, _scan: &ScanId) -> Option<ScanProgress> {
        self.progress.lock().unwrap().clone()
    }
}
