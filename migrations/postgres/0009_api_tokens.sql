-- API tokens for the public API. Only the SHA-256 of a token is kept; the
-- creator's current role caps the token's scope when it is used, so a token
-- is removed with its creator.
CREATE TABLE api_tokens (
    id             TEXT PRIMARY KEY NOT NULL,
    name           TEXT NOT NULL,
    secret_hash    TEXT NOT NULL,
    scope          TEXT NOT NULL CHECK (scope IN ('read', 'operate', 'admin')),
    -- NULL: every tenant (created by an MSP administrator).
    tenant_id      TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    created_by     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at_ms  BIGINT NOT NULL,
    expires_at_ms  BIGINT NOT NULL,
    last_used_ms   BIGINT,
    revoked_at_ms  BIGINT
);

CREATE INDEX api_tokens_by_tenant ON api_tokens (tenant_id, created_at_ms);
