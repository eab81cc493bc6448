-- Recordings of browser terminal sessions, in asciicast v2 (a JSON header
-- line, then one JSON event per line), one row per session.
CREATE TABLE terminal_recordings (
    id            TEXT PRIMARY KEY NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    device_id     TEXT NOT NULL REFERENCES devices(id),
    username      TEXT NOT NULL,
    tunnel_id     TEXT NOT NULL,
    started_at_ms INTEGER NOT NULL,
    ended_at_ms   INTEGER,
    asciicast     TEXT NOT NULL
);
CREATE INDEX terminal_recordings_device ON terminal_recordings(device_id, started_at_ms);
CREATE INDEX terminal_recordings_tenant ON terminal_recordings(tenant_id, started_at_ms);
