-- The audit log: append-only, hash-chained (see store/src/audit/mod.rs for the
-- canonical encoding). `hash` = SHA-256(previous record's hash || canonical
-- encoding of this record), lowercase hex; `prev_hash` repeats the previous
-- record's hash so a record moved elsewhere in the chain can be told from an
-- edited one. No foreign keys: a record outlives the objects it names.
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY NOT NULL,
    at_ms     BIGINT NOT NULL,
    tenant_id TEXT,
    actor     TEXT NOT NULL,
    source    TEXT,
    action    TEXT NOT NULL,
    object    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at_ms);
CREATE INDEX audit_log_tenant_at ON audit_log(tenant_id, at_ms);

-- The newest record's seq and hash, one row. Appending updates it first
-- (which also takes SQLite's write lock), so a deleted tail shows up as
-- missing records when the chain is verified.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
