-- Terminal recordings grow by appended chunks rather than by rewriting one
-- ever longer text: the asciicast header stays in terminal_recordings,
-- the events follow here in order. size_bytes is the whole recording's
-- length, kept so its cap is checked and shown without reading it.
ALTER TABLE terminal_recordings ADD COLUMN size_bytes BIGINT NOT NULL DEFAULT 0;
UPDATE terminal_recordings SET size_bytes = octet_length(asciicast);

CREATE TABLE terminal_recording_chunks (
    recording_id TEXT NOT NULL REFERENCES terminal_recordings(id) ON DELETE CASCADE,
    seq          BIGINT NOT NULL,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    events       TEXT NOT NULL,
    PRIMARY KEY (recording_id, seq)
);

ALTER TABLE terminal_recording_chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE terminal_recording_chunks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON terminal_recording_chunks USING (outpost_tenant_visible(tenant_id));
