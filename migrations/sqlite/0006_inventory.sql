-- Discovery: what the site agents found on their networks (the inventory),
-- what changed, the scans that found it, the jobs that drive the scans, and
-- the RouterOS credentials used to adopt discovered routers as devices.
-- Reconciliation rules: store/src/inventory/mod.rs.

-- One machine on a site's network, as reconciled from scans.
CREATE TABLE hosts (
    id                TEXT PRIMARY KEY NOT NULL,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    site_id           TEXT NOT NULL REFERENCES sites(id),
    -- The primary address (IPv4 preferred) and its sort key: 4 or 6 then the
    -- address as fixed-width hex, so text order is numeric order.
    address           TEXT NOT NULL,
    address_key       TEXT NOT NULL,
    -- Lower-case aa:bb:cc:dd:ee:ff; empty when never learnt (routed networks).
    mac               TEXT NOT NULL DEFAULT '',
    vendor            TEXT NOT NULL DEFAULT '',
    -- The name shown (first reported name, sysName or MNDP identity) and
    -- every reported name, as a JSON array.
    name              TEXT NOT NULL DEFAULT '',
    names             TEXT NOT NULL DEFAULT '[]',
    os_guess          TEXT NOT NULL DEFAULT '',
    os_accuracy       BIGINT NOT NULL DEFAULT 0,
    -- How the last scan saw it: icmp,tcp,arp,snmp,mndp,nmap.
    seen_by           TEXT NOT NULL DEFAULT '',
    rtt_us            BIGINT,
    snmp_descr        TEXT NOT NULL DEFAULT '',
    snmp_object_id    TEXT NOT NULL DEFAULT '',
    snmp_name         TEXT NOT NULL DEFAULT '',
    snmp_location     TEXT NOT NULL DEFAULT '',
    snmp_uptime_ticks BIGINT,
    -- JSON arrays of interfaces and LLDP neighbours from the last SNMP answer.
    snmp_interfaces   TEXT NOT NULL DEFAULT '[]',
    snmp_lldp         TEXT NOT NULL DEFAULT '[]',
    -- Why SNMP gave nothing the last time it was tried; empty on success.
    snmp_error        TEXT NOT NULL DEFAULT '',
    -- The last MNDP announcement, JSON; NULL when the host never sent one.
    mndp              TEXT,
    first_seen_ms     BIGINT NOT NULL,
    last_seen_ms      BIGINT NOT NULL,
    last_scan_id      TEXT NOT NULL DEFAULT '',
    -- Complete scans covering its address in a row that did not see it.
    missed_scans      BIGINT NOT NULL DEFAULT 0,
    gone_at_ms        BIGINT,
    -- Set when another MAC answered at its address; cleared by an operator.
    conflict          BIGINT NOT NULL DEFAULT 0,
    conflict_detail   TEXT NOT NULL DEFAULT '',
    -- The managed device it became (adoption), if any.
    device_id         TEXT REFERENCES devices(id),
    updated_at_ms     BIGINT NOT NULL
);
CREATE INDEX hosts_site ON hosts(tenant_id, site_id);
-- A MAC names one host per site: matching by MAC never has to choose.
CREATE UNIQUE INDEX hosts_site_mac ON hosts(site_id, mac) WHERE mac <> '';

-- Every address a host currently answers at (one host may have IPv4 and IPv6).
CREATE TABLE host_addresses (
    host_id       TEXT NOT NULL REFERENCES hosts(id),
    tenant_id     TEXT NOT NULL,
    site_id       TEXT NOT NULL,
    address       TEXT NOT NULL,
    address_key   TEXT NOT NULL,
    family        BIGINT NOT NULL,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL,
    last_scan_id  TEXT NOT NULL,
    PRIMARY KEY (host_id, address)
);
CREATE INDEX host_addresses_site ON host_addresses(site_id, address);

CREATE TABLE host_ports (
    host_id       TEXT NOT NULL REFERENCES hosts(id),
    protocol      TEXT NOT NULL,
    port          BIGINT NOT NULL,
    service       TEXT NOT NULL,
    product       TEXT NOT NULL,
    version       TEXT NOT NULL,
    banner        TEXT NOT NULL,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL,
    last_scan_id  TEXT NOT NULL,
    PRIMARY KEY (host_id, protocol, port)
);

-- What changed, oldest first: new_host, host_gone, host_back, ip_changed,
-- mac_moved, mac_conflict, port_opened, port_closed, snmp_identity_changed,
-- adopted. at_ms is the agent's clock when it saw it.
CREATE TABLE host_changes (
    id        INTEGER PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL,
    site_id   TEXT NOT NULL,
    host_id   TEXT NOT NULL REFERENCES hosts(id),
    at_ms     BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    detail    TEXT NOT NULL,
    scan_id   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX host_changes_host ON host_changes(host_id, id);
CREATE INDEX host_changes_tenant ON host_changes(tenant_id, at_ms);

-- Scans: requested from the console (state `requested`), reported by agents
-- (`running`), finished (`finished` or, stopped early, `partial`).
CREATE TABLE discovery_scans (
    id              TEXT PRIMARY KEY NOT NULL,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    site_id         TEXT NOT NULL REFERENCES sites(id),
    agent_id        TEXT,
    job_id          TEXT NOT NULL DEFAULT '',
    source          TEXT NOT NULL DEFAULT '',
    state           TEXT NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    requested_at_ms BIGINT,
    started_ms      BIGINT,
    finished_ms     BIGINT,
    -- Comma-separated, as in the job.
    targets         TEXT NOT NULL DEFAULT '',
    addresses       BIGINT NOT NULL DEFAULT 0,
    hosts_found     BIGINT NOT NULL DEFAULT 0,
    -- Host records received so far (all chunks).
    hosts_reported  BIGINT NOT NULL DEFAULT 0,
    partial         BIGINT NOT NULL DEFAULT 0,
    -- JSON array.
    warnings        TEXT NOT NULL DEFAULT '[]',
    icmp            TEXT NOT NULL DEFAULT '',
    probes_sent     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX discovery_scans_site ON discovery_scans(tenant_id, site_id, created_at_ms);

-- What a site's agents scan. SNMP credentials (communities, v3 passwords)
-- are sealed with the tenant's vault key, bound to the job id.
CREATE TABLE discovery_jobs (
    id            TEXT PRIMARY KEY NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    site_id       TEXT NOT NULL REFERENCES sites(id),
    -- Comma-separated CIDRs or addresses.
    targets       TEXT NOT NULL,
    -- Comma-separated ports and ranges; empty: the agent's default list.
    ports         TEXT NOT NULL DEFAULT '',
    rate_pps      BIGINT NOT NULL DEFAULT 0,
    interval_secs BIGINT NOT NULL DEFAULT 0,
    snmp_sealed   BLOB,
    -- What the sealed credentials are, without the secrets ("1 community").
    snmp_summary  TEXT NOT NULL DEFAULT '',
    created_at_ms BIGINT NOT NULL,
    -- Bumped by every change (deletion too), so sessions notice with one query.
    updated_at_ms BIGINT NOT NULL,
    deleted_at_ms BIGINT
);
CREATE INDEX discovery_jobs_site ON discovery_jobs(tenant_id, site_id);

-- The RouterOS login a site's discovered routers are adopted with.
CREATE TABLE site_credentials (
    site_id         TEXT PRIMARY KEY NOT NULL REFERENCES sites(id),
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    username        TEXT NOT NULL,
    -- Sealed with the tenant's vault key; associated data names the site.
    password_sealed BLOB NOT NULL,
    updated_at_ms   BIGINT NOT NULL
);
