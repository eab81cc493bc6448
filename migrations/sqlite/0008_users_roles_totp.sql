-- Tenant-bound users: roles per tenant, a second factor, and console settings.

-- A user's role in one tenant: 'viewer' < 'operator' < 'admin'. MSP-wide
-- administrators (users.is_msp_admin) need no rows here.
CREATE TABLE memberships (
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, tenant_id)
);
CREATE INDEX memberships_tenant ON memberships (tenant_id);

-- A disabled user cannot sign in and has no live sessions.
ALTER TABLE users ADD COLUMN disabled_at_ms BIGINT;
-- The TOTP secret, sealed with the collector's vault; NULL without a second factor.
ALTER TABLE users ADD COLUMN totp_sealed BLOB;
-- The last TOTP time step accepted: only a later one is accepted next (RFC 6238 §5.2).
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;
-- A secret shown for enrolment, not yet confirmed by a first code.
ALTER TABLE users ADD COLUMN totp_pending_sealed BLOB;

-- One-time recovery codes, SHA-256 hashed (they are random, 80 bits).
CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    used_at_ms BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- Half-way sign-ins: the password was right, the second factor (or its
-- enrolment) is still due. Not a session: it opens no page but the next step.
CREATE TABLE login_challenges (
    id_hash         TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose         TEXT NOT NULL CHECK (purpose IN ('code', 'enrol')),
    csrf_token      TEXT NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    expires_at_ms   BIGINT NOT NULL
);

-- Console-wide settings set by MSP administrators.
CREATE TABLE console_settings (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
