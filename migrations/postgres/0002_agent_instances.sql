-- One live instance per agent, certificate serial tracking, safe enrollment retries.

-- The certificate before the current one: accepted until the agent first
-- connects with the current one, so a renewal whose answer was lost is not fatal.
ALTER TABLE agents ADD COLUMN prev_cert_serial TEXT;
-- The outbox instance streaming for this agent (see Hello.instance_id).
ALTER TABLE agents ADD COLUMN instance_id TEXT NOT NULL DEFAULT '';
-- Set when a second instance of the agent id tried to stream while the first
-- was connected (a cloned machine): when, and from which instance and address.
ALTER TABLE agents ADD COLUMN instance_conflict_at_ms BIGINT;
ALTER TABLE agents ADD COLUMN instance_conflict TEXT NOT NULL DEFAULT '';
-- Observations resent under an already stored (agent, seq) with a different payload.
ALTER TABLE agents ADD COLUMN seq_conflicts BIGINT NOT NULL DEFAULT 0;

-- A redeemed token remembers what it issued, so a retry with the same token and
-- the same key (the answer was lost) gets the same certificate back.
ALTER TABLE enrollment_tokens ADD COLUMN csr_key_sha256 TEXT;
ALTER TABLE enrollment_tokens ADD COLUMN issued_cert_hex TEXT;
