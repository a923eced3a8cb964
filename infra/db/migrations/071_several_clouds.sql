-- Several clouds (regions, or per-department accounts) on one database: every job, inventory
-- row, measurement, service state and cloud alarm names its cloud (the worker's
-- CITYOPS_CLOUD_NAME). Rows from before this migration get '' (cloud not recorded).
-- Also: inventory rows of a part that could not be listed this sync are marked stale,
-- a volume in error is an alarm, and each sync part's last outcome is kept.

ALTER TABLE jobs ADD COLUMN cloud text NOT NULL DEFAULT '';
CREATE INDEX jobs_cloud_idx ON jobs (cloud, created_at DESC);

-- the inventory snapshot is rebuilt by the next sync: start it afresh under its cloud
DELETE FROM cloud_resources;
ALTER TABLE cloud_resources ADD COLUMN cloud text NOT NULL;
ALTER TABLE cloud_resources ADD COLUMN stale boolean NOT NULL DEFAULT false;
ALTER TABLE cloud_resources DROP CONSTRAINT cloud_resources_pkey;
ALTER TABLE cloud_resources ADD PRIMARY KEY (cloud, kind, id);

ALTER TABLE cloud_inventory ADD COLUMN cloud text NOT NULL DEFAULT '';
CREATE INDEX cloud_inventory_cloud_idx ON cloud_inventory (cloud, project, kind, time DESC);

ALTER TABLE cloud_capacity ADD COLUMN cloud text NOT NULL DEFAULT '';
CREATE INDEX cloud_capacity_cloud_idx ON cloud_capacity (cloud, scope, metric, time DESC);

DELETE FROM cloud_services;
ALTER TABLE cloud_services ADD COLUMN cloud text NOT NULL;
ALTER TABLE cloud_services DROP CONSTRAINT cloud_services_pkey;
ALTER TABLE cloud_services ADD PRIMARY KEY (cloud, service);

-- open alarms of before cannot be told apart by cloud: clear them; the next sync of each
-- cloud raises again whatever still holds
UPDATE cloud_alarms SET state = 'cleared', cleared_at = now() WHERE state <> 'cleared';
ALTER TABLE cloud_alarms ADD COLUMN cloud text NOT NULL DEFAULT '';
DROP INDEX cloud_alarms_open_key;
CREATE UNIQUE INDEX cloud_alarms_open_key ON cloud_alarms (cloud, kind, subject)
    WHERE state <> 'cleared';
ALTER TABLE cloud_alarms DROP CONSTRAINT cloud_alarms_kind_check;
ALTER TABLE cloud_alarms ADD CONSTRAINT cloud_alarms_kind_check
    CHECK (kind IN ('quota_near_full', 'server_error', 'volume_error', 'service_down'));

-- one row per cloud and sync part (identity, servers, volumes, networks, capacity...):
-- ok is the last attempt's outcome, synced_at the last success
CREATE TABLE cloud_sync (
    cloud       text NOT NULL,
    part        text NOT NULL,
    ok          boolean NOT NULL,
    detail      text NOT NULL DEFAULT '',
    checked_at  timestamptz NOT NULL DEFAULT now(),
    synced_at   timestamptz,
    PRIMARY KEY (cloud, part)
);
