-- Device metrics: interned series, raw samples, 5-minute and 1-hour rollups.
-- See store/src/metrics/mod.rs for the invariants.

-- One row per device, metric and subject; never deleted while the device
-- exists (the collector caches id lookups in memory).
CREATE TABLE metric_series (
    id            INTEGER PRIMARY KEY NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    device_id     TEXT NOT NULL REFERENCES devices(id),
    metric        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX metric_series_key ON metric_series(device_id, metric, subject);

-- Raw samples, ts in Unix seconds. NUMERIC affinity: a value that is an exact
-- integer (counts, percents, bytes) is stored as a 0-8 byte integer instead of
-- an 8-byte float. No foreign key (series ids come only from metric_series)
-- and no secondary index: this is the big table.
CREATE TABLE metric_raw (
    series_id INTEGER NOT NULL,
    ts        INTEGER NOT NULL,
    value     NUMERIC NOT NULL,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;

-- Summaries of 5-minute and 1-hour buckets; bucket_ts is the bucket's start,
-- Unix seconds. avg = sum_value / samples.
CREATE TABLE metric_5m (
    series_id INTEGER NOT NULL,
    bucket_ts INTEGER NOT NULL,
    min_value NUMERIC NOT NULL,
    max_value NUMERIC NOT NULL,
    sum_value NUMERIC NOT NULL,
    samples   INTEGER NOT NULL,
    PRIMARY KEY (series_id, bucket_ts)
) WITHOUT ROWID;

CREATE TABLE metric_1h (
    series_id INTEGER NOT NULL,
    bucket_ts INTEGER NOT NULL,
    min_value NUMERIC NOT NULL,
    max_value NUMERIC NOT NULL,
    sum_value NUMERIC NOT NULL,
    samples   INTEGER NOT NULL,
    PRIMARY KEY (series_id, bucket_ts)
) WITHOUT ROWID;

-- Buckets to (re)compute, per device: written in the transaction that stores
-- the samples (5-minute buckets) or the 5-minute summaries (1-hour buckets),
-- deleted by the rollup pass that recomputes them.
CREATE TABLE metric_dirty_5m (
    device_id TEXT NOT NULL,
    bucket_ts INTEGER NOT NULL,
    PRIMARY KEY (device_id, bucket_ts)
) WITHOUT ROWID;

CREATE TABLE metric_dirty_1h (
    device_id TEXT NOT NULL,
    bucket_ts INTEGER NOT NULL,
    PRIMARY KEY (device_id, bucket_ts)
) WITHOUT ROWID;
