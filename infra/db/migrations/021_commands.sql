-- Commands to devices, command-centre presets, and what the API publishes to gateways.

-- how the agent polls a device travels in the gateway's config topic with its address
ALTER TABLE devices ADD COLUMN poll_interval_s double precision NOT NULL DEFAULT 1
    CHECK (poll_interval_s > 0 AND poll_interval_s <= 86400);
ALTER TABLE devices ADD COLUMN timeout_s double precision NOT NULL DEFAULT 2
    CHECK (timeout_s > 0 AND timeout_s <= 60);
-- grows with every config published, so an agent can tell a newer config from an older one
ALTER TABLE gateways ADD COLUMN config_version bigint NOT NULL DEFAULT 0;
-- what the broker holds retained; behind config_version means: publish again
ALTER TABLE gateways ADD COLUMN config_published_version bigint NOT NULL DEFAULT 0;

CREATE TABLE preset_runs (
    id           uuid PRIMARY KEY,
    preset       text NOT NULL,
    started_by   text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    state        text NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    -- per step: what it does, its command and that command's outcome
    steps        jsonb NOT NULL DEFAULT '[]'
);

-- pending -> sent -> succeeded | failed | rejected | expired
CREATE TABLE commands (
    id            uuid PRIMARY KEY,
    device_id     text NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    gateway_id    text NOT NULL,
    point         text,
    method        text,
    value         jsonb,
    args          jsonb,
    state         text NOT NULL DEFAULT 'pending' CHECK (state IN
                    ('pending', 'sent', 'succeeded', 'failed', 'rejected', 'expired')),
    detail        text NOT NULL DEFAULT '',
    readback      jsonb,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at       timestamptz,
    finished_at   timestamptz,
    expires_at    timestamptz NOT NULL,
    preset_run_id uuid REFERENCES preset_runs(id) ON DELETE SET NULL,
    step          integer,
    CHECK ((point IS NULL) <> (method IS NULL))
);
CREATE INDEX commands_device_idx ON commands (device_id, created_at DESC);
CREATE INDEX commands_open_idx ON commands (expires_at) WHERE state IN ('pending', 'sent');
CREATE INDEX commands_run_idx ON commands (preset_run_id, step) WHERE preset_run_id IS NOT NULL;

-- a named list of steps run as one operation, e.g. the morning briefing
CREATE TABLE presets (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    title       text NOT NULL DEFAULT '',
    steps       jsonb NOT NULL,
    updated_by  text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE preset_runs ADD CONSTRAINT preset_runs_preset_fk
    FOREIGN KEY (preset) REFERENCES presets(name) ON DELETE CASCADE;
