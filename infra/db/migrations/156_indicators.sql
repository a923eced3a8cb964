-- 指标体系 (issue #17 item 1): indicators as data, computed on schedule into a hypertable.
--
-- An indicator's query is SQL written by the data bureau. It may read only the views of the
-- `metrics` schema below (checked by parsing before it is stored: indicators/guard.py) and
-- runs read-only with a time-out, so an indicator can neither see credentials, password
-- hashes or the audit log nor change anything.

CREATE SCHEMA IF NOT EXISTS metrics;

CREATE VIEW metrics.events AS
SELECT e.id, e.category_code, c.major AS category_major, c.minor AS category_minor, e.channel,
       e.state, e.urgency, e.department_id, e.town_code, e.community_code, e.grid,
       e.reported_at, e.disposed_at, e.disposed_on_time, e.closed_at, e.closed_on_time,
       e.rework_count, e.supervised, e.merged_into
FROM events e JOIN event_categories c ON c.code = e.category_code;

CREATE VIEW metrics.alarms AS
SELECT a.id, a.rule_id, a.device_id, a.severity, a.state, a.first_seen_at, a.last_seen_at,
       a.acknowledged_at, a.cleared_at, d.department_id, d.profile_id
FROM alarms a JOIN devices d ON d.id = a.device_id;

-- a device is online when its gateway's last status says so (the agent's own view)
CREATE VIEW metrics.devices AS
SELECT d.id, d.profile_id, p.category AS profile_category, d.department_id, d.site_id,
       d.gateway_id, coalesce(g.last_status -> 'devices' ->> d.id, 'unknown') AS status,
       g.revoked_at IS NULL AS active
FROM devices d JOIN profiles p ON p.id = d.profile_id JOIN gateways g ON g.id = d.gateway_id;

CREATE VIEW metrics.readings_hourly AS
SELECT r.bucket, pt.device_id, pt.name AS point, d.profile_id, d.department_id,
       r.sum / nullif(r.count, 0) AS avg, r.min, r.max, r.count
FROM rollup_1h r JOIN points pt ON pt.id = r.point_id JOIN devices d ON d.id = pt.device_id;

CREATE VIEW metrics.enterprise_months AS
SELECT i.enterprise_code, e.industry, e.town, e.size, i.month, i.revenue, i.value_added,
       i.profit, i.tax, i.electricity_kwh
FROM enterprise_indicators i JOIN enterprises e ON e.code = i.enterprise_code;

CREATE VIEW metrics.sync_runs AS
SELECT r.id, r.sync_id, s.target_table, src.system_id, sy.department_id, r.state,
       r.started_at, r.finished_at, r.rows_read, r.rows_written
FROM sync_runs r JOIN syncs s ON s.id = r.sync_id JOIN sources src ON src.id = s.source_id
JOIN systems sy ON sy.id = src.system_id;

CREATE VIEW metrics.api_calls AS SELECT * FROM api_calls;

CREATE TABLE indicator_classes (
    code    text PRIMARY KEY CHECK (code ~ '^[A-Z][A-Z0-9]{0,3}(\.[0-9]{2}){0,3}$'),
    name    text NOT NULL,
    parent  text REFERENCES indicator_classes(code)
);

CREATE TABLE indicators (
    code          text PRIMARY KEY CHECK (code ~ '^[A-Z][A-Z0-9]{0,3}(\.[0-9]{2}){0,3}\.[0-9]{3}$'),
    name          text NOT NULL,
    class_code    text NOT NULL REFERENCES indicator_classes(code),
    definition    text NOT NULL,                -- 定义
    caliber       text NOT NULL DEFAULT '',     -- 口径: what is counted and how
    query         text NOT NULL,                -- SQL over metrics.* with :start and :end
    breakdown     text NOT NULL DEFAULT 'none'
        CHECK (breakdown IN ('none', 'town', 'department', 'grid', 'category', 'industry')),
    unit          text NOT NULL,
    frequency     text NOT NULL CHECK (frequency IN ('hourly', 'daily', 'weekly', 'monthly')),
    owner_department text REFERENCES departments(id),
    direction     text NOT NULL CHECK (direction IN ('up', 'down')),  -- up: higher is better
    warning       double precision,
    alarm         double precision,
    excellence    double precision,
    target        double precision,
    open_event_category text REFERENCES event_categories(code),  -- red opens an event of it
    enabled       boolean NOT NULL DEFAULT true,
    version       integer NOT NULL DEFAULT 1,
    updated_by    text NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- one value per indicator, period and dimension ('' is the county as a whole)
CREATE TABLE indicator_values (
    indicator_code text NOT NULL REFERENCES indicators(code) ON DELETE CASCADE,
    period_start   timestamptz NOT NULL,
    dimension      text NOT NULL DEFAULT '',
    value          double precision NOT NULL,
    light          text NOT NULL CHECK (light IN ('excellent', 'green', 'yellow', 'red', 'none')),
    computed_at    timestamptz NOT NULL,
    PRIMARY KEY (indicator_code, dimension, period_start)
);
SELECT create_hypertable('indicator_values', 'period_start',
                         chunk_time_interval => interval '1 year');

-- each computation, failed ones included: a failed period has an error, never a zero
CREATE TABLE indicator_runs (
    indicator_code text NOT NULL REFERENCES indicators(code) ON DELETE CASCADE,
    period_start   timestamptz NOT NULL,
    status         text NOT NULL CHECK (status IN ('ok', 'failed')),
    error          text,
    rows           integer NOT NULL DEFAULT 0,
    seconds        double precision NOT NULL,
    computed_at    timestamptz NOT NULL,
    PRIMARY KEY (indicator_code, period_start)
);

-- a threshold crossed: the alarm lifecycle of device alarms (active, acknowledged, cleared;
-- repeats folded), kept apart because device alarms belong to a device
CREATE TABLE indicator_alarms (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    indicator_code  text NOT NULL REFERENCES indicators(code) ON DELETE CASCADE,
    dimension       text NOT NULL DEFAULT '',
    severity        text NOT NULL CHECK (severity IN ('major', 'warning')),
    state           text NOT NULL CHECK (state IN ('active', 'acknowledged', 'cleared')),
    message         text NOT NULL,
    value           double precision NOT NULL,
    period_start    timestamptz NOT NULL,
    count           integer NOT NULL DEFAULT 1,
    event_id        bigint REFERENCES events(id),
    first_seen_at   timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text,
    cleared_at      timestamptz,
    cleared_by      text
);
CREATE UNIQUE INDEX indicator_alarms_open_idx ON indicator_alarms (indicator_code, dimension)
    WHERE state <> 'cleared';
