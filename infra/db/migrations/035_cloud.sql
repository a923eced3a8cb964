-- Cloud control: jobs (every cloud change and Ansible run), their events, and monitoring.

CREATE TABLE jobs (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind          text NOT NULL,                 -- e.g. server.ensure, playbook.run
    params        jsonb NOT NULL,                -- the validated request; never secrets
    state         text NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    progress      smallint NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    detail        text NOT NULL DEFAULT '',
    result        jsonb,
    requested_by  text NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz
);
CREATE INDEX jobs_created_idx ON jobs (created_at DESC);
CREATE INDEX jobs_state_idx ON jobs (state) WHERE state IN ('queued', 'running');

-- progress lines and, for Ansible runs, one row per host and task
CREATE TABLE job_events (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id   uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    time     timestamptz NOT NULL DEFAULT now(),
    message  text NOT NULL DEFAULT '',
    host     text,
    task     text,
    status   text
);
CREATE INDEX job_events_job_idx ON job_events (job_id, id);

-- the inventory as last seen, and its history
CREATE TABLE cloud_resources (
    kind        text NOT NULL,
    id          text NOT NULL,
    name        text NOT NULL,
    project     text NOT NULL DEFAULT '',
    status      text NOT NULL,
    attributes  jsonb NOT NULL DEFAULT '{}',
    seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, id)
);

CREATE TABLE cloud_inventory (
    time        timestamptz NOT NULL,
    kind        text NOT NULL,
    project     text NOT NULL,
    count       integer NOT NULL,
    by_status   jsonb NOT NULL
);
SELECT create_hypertable('cloud_inventory', 'time', chunk_time_interval => interval '7 days');
CREATE INDEX cloud_inventory_idx ON cloud_inventory (project, kind, time DESC);

CREATE TABLE cloud_capacity (
    time    timestamptz NOT NULL,
    scope   text NOT NULL,         -- "hypervisor" or a project name
    metric  text NOT NULL,         -- vcpus, ram_mb, disk_gb, cores, ram, instances
    used    double precision NOT NULL,
    lim     double precision NOT NULL  -- -1: unlimited
);
SELECT create_hypertable('cloud_capacity', 'time', chunk_time_interval => interval '7 days');
CREATE INDEX cloud_capacity_idx ON cloud_capacity (scope, metric, time DESC);

-- cloud health as last probed, per service
CREATE TABLE cloud_services (
    service     text PRIMARY KEY,
    state       text NOT NULL,
    checked_at  timestamptz NOT NULL DEFAULT now()
);

-- Alarms about the cloud itself (not about a device, so not in `alarms`): a project near its
-- quota, a server in ERROR, a cloud service not answering. Same lifecycle and severities as
-- device alarms; at most one open alarm per (kind, subject).
CREATE TABLE cloud_alarms (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('quota_near_full', 'server_error',
                                                   'service_down')),
    subject          text NOT NULL,     -- "project/metric", "project/server", or the service
    severity         text NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning')),
    state            text NOT NULL DEFAULT 'active'
                     CHECK (state IN ('active', 'acknowledged', 'cleared')),
    message          text NOT NULL,
    count            integer NOT NULL DEFAULT 1,
    first_seen_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz NOT NULL DEFAULT now(),
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    cleared_at       timestamptz
);
CREATE UNIQUE INDEX cloud_alarms_open_key ON cloud_alarms (kind, subject) WHERE state <> 'cleared';
