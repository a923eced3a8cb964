-- 1-minute and 1-hour rollups of numeric readings (quality good or uncertain), kept by the
-- platform (ingestion/rollups.py) because the Apache build of TimescaleDB has no continuous
-- aggregates. sum and count rather than avg, so that buckets combine exactly.

CREATE TABLE rollup_1m (
    bucket    timestamptz NOT NULL,
    point_id  integer NOT NULL,
    sum       double precision,
    count     bigint NOT NULL,
    min       double precision,
    max       double precision,
    PRIMARY KEY (point_id, bucket)
);
SELECT create_hypertable('rollup_1m', 'bucket', chunk_time_interval => interval '7 days');

CREATE TABLE rollup_1h (
    bucket    timestamptz NOT NULL,
    point_id  integer NOT NULL,
    sum       double precision,
    count     bigint NOT NULL,
    min       double precision,
    max       double precision,
    PRIMARY KEY (point_id, bucket)
);
SELECT create_hypertable('rollup_1h', 'bucket', chunk_time_interval => interval '90 days');

-- Minutes that received readings since they were last rolled up. The ingest transaction adds
-- rows here together with the readings, so a minute is never missed; the refresher deletes the
-- rows it has seen (only those: rows committed meanwhile stay for the next round).
CREATE TABLE rollup_dirty (
    bucket  timestamptz NOT NULL
);
CREATE INDEX rollup_dirty_bucket_idx ON rollup_dirty (bucket);
