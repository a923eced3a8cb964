-- Core schema (DESIGN.md §5): registry, readings hypertable, batch keys, dead letters.
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE sites (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE departments (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE gateways (
    id            text PRIMARY KEY,
    name          text NOT NULL DEFAULT '',
    site_id       text REFERENCES sites(id),
    department_id text REFERENCES departments(id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_status   jsonb,
    last_seen_at  timestamptz
);

CREATE TABLE profiles (
    id          text PRIMARY KEY,          -- the profile's `model`
    protocol    text NOT NULL,
    category    text NOT NULL,
    title       text NOT NULL DEFAULT '',
    body        jsonb NOT NULL,            -- the validated profile, as loaded
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    id            text PRIMARY KEY,
    title         text NOT NULL DEFAULT '',
    gateway_id    text NOT NULL REFERENCES gateways(id),
    profile_id    text NOT NULL REFERENCES profiles(id),
    site_id       text REFERENCES sites(id),
    department_id text REFERENCES departments(id),
    address       jsonb NOT NULL DEFAULT '{}',
    latitude      double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude     double precision CHECK (longitude BETWEEN -180 AND 180),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_gateway_idx ON devices (gateway_id);

CREATE TABLE points (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id   text NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    name        text NOT NULL,
    title       text NOT NULL DEFAULT '',
    unit        text NOT NULL DEFAULT '',
    data_type   text NOT NULL,
    writable    boolean NOT NULL DEFAULT false,
    UNIQUE (device_id, name)
);

-- narrow rows: a reading refers to its point by integer id; quality 0 good, 1 uncertain, 2 bad
CREATE TABLE readings (
    time      timestamptz NOT NULL,
    point_id  integer NOT NULL,
    value     double precision,
    quality   smallint NOT NULL DEFAULT 0
);
SELECT create_hypertable('readings', 'time', chunk_time_interval => interval '1 day');
CREATE INDEX readings_point_time_idx ON readings (point_id, time DESC);

CREATE TABLE readings_text (
    time      timestamptz NOT NULL,
    point_id  integer NOT NULL,
    value     text,
    quality   smallint NOT NULL DEFAULT 0
);
SELECT create_hypertable('readings_text', 'time', chunk_time_interval => interval '7 days');
CREATE INDEX readings_text_point_time_idx ON readings_text (point_id, time DESC);

-- one row per stored telemetry batch: a redelivered batch finds its key and is skipped
CREATE TABLE ingested_batches (
    gateway_id  text NOT NULL,
    stream      uuid NOT NULL,
    seq         bigint NOT NULL,
    readings    integer NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, stream, seq)
);

CREATE TABLE dead_letters (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    topic        text NOT NULL,
    payload      bytea NOT NULL,
    reason       text NOT NULL,             -- invalid_json, schema, unknown_point, ...
    detail       text NOT NULL
);
CREATE INDEX dead_letters_received_idx ON dead_letters (received_at DESC);
