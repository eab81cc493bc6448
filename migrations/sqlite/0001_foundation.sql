-- Outpost foundation schema (SQLite dialect). Times are Unix milliseconds.
CREATE TABLE tenants (
    id            TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE sites (
    id            TEXT PRIMARY KEY NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    deleted_at_ms BIGINT
);
CREATE UNIQUE INDEX sites_live_name ON sites(tenant_id, name) WHERE deleted_at_ms IS NULL;

CREATE TABLE enrollment_tokens (
    id            TEXT PRIMARY KEY NOT NULL,
    secret_hash   TEXT NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    site_id       TEXT NOT NULL REFERENCES sites(id),
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    used_at_ms    BIGINT,
    used_by_agent TEXT
);

CREATE TABLE agents (
    id                 TEXT PRIMARY KEY NOT NULL,
    tenant_id          TEXT NOT NULL REFERENCES tenants(id),
    site_id            TEXT NOT NULL REFERENCES sites(id),
    hostname           TEXT NOT NULL DEFAULT '',
    os                 TEXT NOT NULL DEFAULT '',
    version            TEXT NOT NULL DEFAULT '',
    addresses          TEXT NOT NULL DEFAULT '',
    enrolled_at_ms     BIGINT NOT NULL,
    cert_serial        TEXT NOT NULL,
    cert_not_after_ms  BIGINT NOT NULL,
    revoked_at_ms      BIGINT,
    connected_since_ms BIGINT,
    last_seen_ms       BIGINT,
    outbox_depth       BIGINT NOT NULL DEFAULT 0,
    acked_seq          BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX agents_tenant ON agents(tenant_id, site_id);

CREATE TABLE metric_samples (
    agent_id       TEXT NOT NULL,
    seq            BIGINT NOT NULL,
    tenant_id      TEXT NOT NULL,
    observed_at_ms BIGINT NOT NULL,
    name           TEXT NOT NULL,
    subject        TEXT NOT NULL,
    value          DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (agent_id, seq)
) WITHOUT ROWID;

CREATE TABLE host_facts (
    agent_id       TEXT NOT NULL,
    seq            BIGINT NOT NULL,
    tenant_id      TEXT NOT NULL,
    observed_at_ms BIGINT NOT NULL,
    hostname       TEXT NOT NULL,
    os             TEXT NOT NULL,
    os_version     TEXT NOT NULL,
    kernel         TEXT NOT NULL,
    arch           TEXT NOT NULL,
    addresses      TEXT NOT NULL,
    agent_version  TEXT NOT NULL,
    outbox_depth   BIGINT NOT NULL,
    uptime_seconds BIGINT NOT NULL,
    PRIMARY KEY (agent_id, seq)
);

CREATE TABLE users (
    id              TEXT PRIMARY KEY NOT NULL,
    username        TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    is_msp_admin    BIGINT NOT NULL DEFAULT 0,
    created_at_ms   BIGINT NOT NULL
);

CREATE TABLE sessions (
    id_hash       TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token    TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
