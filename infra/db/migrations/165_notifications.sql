-- Notifications (issue #18 item 3, docs/notifications.md): channels (plugins, secrets encrypted
-- with the deployment's key), subscriptions, the notifications found in the platform's own tables
-- (one row per kind and source object: the unique key is what keeps a notification from being
-- sent twice) and their deliveries, a queue the worker drains with retries.

CREATE TABLE notification_channels (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    kind        text NOT NULL CHECK (kind IN ('email', 'wecom', 'dingtalk', 'feishu', 'sms')),
    config      jsonb NOT NULL DEFAULT '{}',
    secret      bytea,                 -- Fernet token of a JSON object (datafoundation/secrets.py)
    enabled     boolean NOT NULL DEFAULT true,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE notification_subscriptions (
    id            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL,
    channel_id    integer NOT NULL REFERENCES notification_channels(id) ON DELETE CASCADE,
    kinds         text[] NOT NULL CHECK (cardinality(kinds) > 0),
    min_severity  text NOT NULL DEFAULT 'warning'
        CHECK (min_severity IN ('critical', 'major', 'minor', 'warning')),
    departments   text[],              -- NULL: every department
    role          text,                -- NULL: whoever the notification is for
    recipients    text[] NOT NULL DEFAULT '{}',  -- addresses, phones (robots: @-mentions)
    quiet_start   time,                -- county time; non-critical held until quiet_end
    quiet_end     time,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);

CREATE TABLE notifications (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind           text NOT NULL,
    ref            text NOT NULL,      -- the source object: event transition, alarm, request...
    severity       text NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning')),
    department_id  text,
    audience       text[] NOT NULL,    -- the roles it is for
    title          text NOT NULL,
    body           text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, ref)
);

CREATE TABLE notification_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id  bigint NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    subscription_id  integer REFERENCES notification_subscriptions(id) ON DELETE SET NULL,
    channel_id       integer NOT NULL REFERENCES notification_channels(id) ON DELETE CASCADE,
    recipients       text[] NOT NULL DEFAULT '{}',
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_at          timestamptz NOT NULL,   -- the end of quiet hours, or the next retry
    held             boolean NOT NULL DEFAULT false,  -- held by quiet hours when queued
    last_status      integer,
    last_answer      text,
    log              jsonb NOT NULL DEFAULT '[]',  -- every attempt: at, status, answer
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    UNIQUE (notification_id, subscription_id)
);
CREATE INDEX notification_deliveries_due_idx ON notification_deliveries (next_at)
    WHERE state = 'pending';
CREATE INDEX notification_deliveries_recent_idx ON notification_deliveries (id DESC);
