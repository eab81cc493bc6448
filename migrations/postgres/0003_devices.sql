-- RouterOS devices, the credentials vault, device state and config backups.

-- Identifies the vault master key without revealing it (see outpost-vault):
-- starting with another key file is refused instead of failing on every device.
CREATE TABLE vault_meta (
    id            BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    key_check     TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE devices (
    id                  TEXT PRIMARY KEY NOT NULL,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id),
    site_id             TEXT NOT NULL REFERENCES sites(id),
    address             TEXT NOT NULL,
    api_port            BIGINT NOT NULL,
    api_tls             BIGINT NOT NULL DEFAULT 0,
    ssh_port            BIGINT NOT NULL DEFAULT 22,
    username            TEXT NOT NULL,
    -- Sealed with the tenant's vault key; associated data names the device.
    password_sealed     BYTEA NOT NULL,
    poll_interval_secs  BIGINT NOT NULL DEFAULT 60,
    -- Pins, hex SHA-256; NULL until first use.
    api_tls_pin         TEXT,
    ssh_host_key_pin    TEXT,
    created_at_ms       BIGINT NOT NULL,
    -- Bumped by every change an agent must hear about (settings, deletion,
    -- pins, reassignment), so sessions notice with one cheap query.
    updated_at_ms       BIGINT NOT NULL,
    deleted_at_ms       BIGINT,
    -- The agent polling it (chosen by the collector among the site's agents).
    agent_id            TEXT,
    -- Status: pending, up, unreachable, auth_failed, tls_pin_mismatch,
    -- no_api_policy, tls_unsupported, protocol_error.
    state               TEXT NOT NULL DEFAULT 'pending',
    state_reason        TEXT NOT NULL DEFAULT '',
    state_since_ms      BIGINT NOT NULL,
    -- The certificate the device presented when it did not match the pin.
    presented_tls_fingerprint TEXT,
    last_poll_ms        BIGINT,
    last_poll_duration_ms BIGINT,
    -- Latest system facts.
    identity            TEXT NOT NULL DEFAULT '',
    version             TEXT NOT NULL DEFAULT '',
    channel             TEXT NOT NULL DEFAULT '',
    board_name          TEXT NOT NULL DEFAULT '',
    architecture        TEXT NOT NULL DEFAULT '',
    serial_number       TEXT NOT NULL DEFAULT '',
    current_firmware    TEXT NOT NULL DEFAULT '',
    upgrade_firmware    TEXT NOT NULL DEFAULT '',
    uptime_secs         BIGINT,
    cpu_load            BIGINT,
    free_memory         BIGINT,
    total_memory        BIGINT,
    free_hdd            BIGINT,
    total_hdd           BIGINT,
    last_config_change  TEXT NOT NULL DEFAULT '',
    latest_version      TEXT NOT NULL DEFAULT '',
    update_available    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX devices_tenant ON devices(tenant_id, site_id);
CREATE INDEX devices_agent ON devices(agent_id);
CREATE UNIQUE INDEX devices_live_address ON devices(site_id, address, api_port) WHERE deleted_at_ms IS NULL;

-- Latest state, replaced section by section as polls report changes.
CREATE TABLE device_interfaces (
    device_id   TEXT NOT NULL REFERENCES devices(id),
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    running     BIGINT NOT NULL,
    disabled    BIGINT NOT NULL,
    mac_address TEXT NOT NULL,
    rx_bytes    BIGINT NOT NULL,
    tx_bytes    BIGINT NOT NULL,
    link_downs  BIGINT NOT NULL,
    rx_bps      DOUBLE PRECISION,
    tx_bps      DOUBLE PRECISION,
    -- The poll that last listed it: older rows are interfaces that are gone.
    seen_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (device_id, name)
);

CREATE TABLE device_health (
    device_id TEXT NOT NULL REFERENCES devices(id),
    name      TEXT NOT NULL,
    value     DOUBLE PRECISION NOT NULL,
    unit      TEXT NOT NULL,
    PRIMARY KEY (device_id, name)
);

CREATE TABLE device_addresses (
    device_id TEXT NOT NULL REFERENCES devices(id),
    address   TEXT NOT NULL,
    interface TEXT NOT NULL,
    network   TEXT NOT NULL,
    disabled  BIGINT NOT NULL
);
CREATE INDEX device_addresses_device ON device_addresses(device_id);

CREATE TABLE device_neighbors (
    device_id     TEXT NOT NULL REFERENCES devices(id),
    interface     TEXT NOT NULL,
    address       TEXT NOT NULL,
    mac_address   TEXT NOT NULL,
    identity      TEXT NOT NULL,
    platform      TEXT NOT NULL,
    version       TEXT NOT NULL,
    board         TEXT NOT NULL,
    discovered_by TEXT NOT NULL
);
CREATE INDEX device_neighbors_device ON device_neighbors(device_id);

CREATE TABLE device_wireless_clients (
    device_id   TEXT NOT NULL REFERENCES devices(id),
    interface   TEXT NOT NULL,
    mac_address TEXT NOT NULL,
    signal_dbm  BIGINT,
    band        TEXT NOT NULL,
    tx_rate_bps BIGINT NOT NULL,
    rx_rate_bps BIGINT NOT NULL,
    tx_ccq      BIGINT,
    tx_bytes    BIGINT NOT NULL,
    rx_bytes    BIGINT NOT NULL,
    uptime_secs BIGINT NOT NULL
);
CREATE INDEX device_wireless_clients_device ON device_wireless_clients(device_id);

CREATE TABLE device_dhcp_leases (
    device_id          TEXT NOT NULL REFERENCES devices(id),
    address            TEXT NOT NULL,
    mac_address        TEXT NOT NULL,
    host_name          TEXT NOT NULL,
    status             TEXT NOT NULL,
    expires_after_secs BIGINT NOT NULL
);
CREATE INDEX device_dhcp_leases_device ON device_dhcp_leases(device_id);

-- The newest log lines of each device (older ones are pruned).
CREATE TABLE device_log (
    device_id   TEXT NOT NULL REFERENCES devices(id),
    received_ms BIGINT NOT NULL,
    ros_id      TEXT NOT NULL,
    time        TEXT NOT NULL,
    topics      TEXT NOT NULL,
    message     TEXT NOT NULL
);
CREATE INDEX device_log_device ON device_log(device_id, received_ms);

-- What happened to a device: state changes, certificate changes, new config
-- versions, firmware updates available.
CREATE TABLE device_events (
    tenant_id TEXT NOT NULL,
    device_id TEXT NOT NULL REFERENCES devices(id),
    at_ms     BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    detail    TEXT NOT NULL
);
CREATE INDEX device_events_device ON device_events(device_id, at_ms);
CREATE INDEX device_events_tenant ON device_events(tenant_id, at_ms);

-- Configuration versions: the export and its diff against the previous
-- version, both sealed with the device's backup key (derived from the
-- tenant's vault key); the HMAC of the normalised export detects "unchanged".
CREATE TABLE config_versions (
    tenant_id       TEXT NOT NULL,
    device_id       TEXT NOT NULL REFERENCES devices(id),
    taken_at_ms     BIGINT NOT NULL,
    ros_version     TEXT NOT NULL,
    normalized_hmac TEXT NOT NULL,
    sealed_export   BYTEA NOT NULL,
    sealed_diff     BYTEA,
    lines_added     BIGINT NOT NULL DEFAULT 0,
    lines_removed   BIGINT NOT NULL DEFAULT 0,
    trigger_reason  TEXT NOT NULL,
    PRIMARY KEY (device_id, taken_at_ms)
);
