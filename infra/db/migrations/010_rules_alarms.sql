-- Rules (as data), their per-device condition state, alarms and the alarm transition log.
-- docs/ingestion.md describes every column; ingestion/alarms.py is the only writer of alarms
-- (the API calls its acknowledge/clear functions).

CREATE TABLE rules (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    kind        text NOT NULL CHECK (kind IN ('threshold', 'rate_of_change', 'offline', 'anomaly')),
    severity    text NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning')),
    title       text NOT NULL DEFAULT '',
    body        jsonb NOT NULL,             -- the whole rule, validated by ingestion/rules/model.py
    enabled     boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Whether a rule's condition holds for a device now, and up to which reading it was evaluated.
-- Kept in the database so that any ingest worker can evaluate the next batch correctly.
CREATE TABLE rule_states (
    rule_id       text NOT NULL REFERENCES rules(id) ON DELETE CASCADE,
    device_id     text NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    active        boolean NOT NULL,
    since         timestamptz NOT NULL DEFAULT now(),   -- when `active` last changed
    evaluated_to  timestamptz,                           -- newest reading taken into account
    PRIMARY KEY (rule_id, device_id)
);
CREATE INDEX rule_states_active_idx ON rule_states (rule_id, device_id) WHERE active;

CREATE TABLE alarms (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id          text NOT NULL REFERENCES rules(id) ON DELETE CASCADE,
    device_id        text NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    point_id         integer REFERENCES points(id) ON DELETE SET NULL,
    severity         text NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning')),
    state            text NOT NULL CHECK (state IN ('active', 'acknowledged', 'cleared')),
    message          text NOT NULL,
    value            double precision,          -- the reading that raised it (or last repeated)
    reading_at       timestamptz,               -- that reading's time
    count            integer NOT NULL DEFAULT 1 CHECK (count >= 1),  -- raises folded into it
    first_seen_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz NOT NULL DEFAULT now(),
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    cleared_at       timestamptz,
    cleared_by       text,                      -- 'system' when the condition went away
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- deduplication: at most one open (active or acknowledged) alarm per rule and device
CREATE UNIQUE INDEX alarms_open_key ON alarms (rule_id, device_id) WHERE state <> 'cleared';
CREATE INDEX alarms_state_seen_idx ON alarms (state, last_seen_at DESC);
CREATE INDEX alarms_device_seen_idx ON alarms (device_id, last_seen_at DESC);
CREATE INDEX alarms_recent_cleared_idx ON alarms (rule_id, device_id, cleared_at DESC)
    WHERE state = 'cleared';

-- Every lifecycle step, with who and when; also the outbox of the internal alarm topic:
-- an ingest worker publishes rows whose published_at is null, then sets it.
CREATE TABLE alarm_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alarm_id      bigint NOT NULL REFERENCES alarms(id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('raised', 'repeated', 'reopened', 'acknowledged',
                                                'cleared')),
    at            timestamptz NOT NULL DEFAULT now(),
    by            text NOT NULL,                -- 'system' or a username
    note          text NOT NULL DEFAULT '',
    published_at  timestamptz
);
CREATE INDEX alarm_events_alarm_idx ON alarm_events (alarm_id, id);
CREATE INDEX alarm_events_unpublished_idx ON alarm_events (id) WHERE published_at IS NULL;
