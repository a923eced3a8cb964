-- API keys for platform services, the audit log of every write, and API call metering.

-- A key is shown once: only its SHA-256 is kept (the secret is 32 random bytes, so a slow
-- password hash would add CPU to every call and no protection). `routes` are patterns of
-- "METHOD /path-template" (shell-style, e.g. "GET /v1/readings/*"); `departments` limits the
-- devices whose data the key may read (NULL: every department).
CREATE TABLE api_keys (
    id           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    key_hash     text NOT NULL UNIQUE,
    prefix       text NOT NULL,
    role         text NOT NULL CHECK (role IN ('admin', 'ops_engineer', 'field_technician',
                                               'operator', 'dispatcher', 'department_staff',
                                               'viewer')),
    routes       text[] NOT NULL CHECK (cardinality(routes) > 0),
    departments  text[],
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz
);

-- who, what, when, from where, outcome; never request bodies (they may hold secrets)
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time        timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    actor_kind  text NOT NULL,            -- user, api_key, anonymous, system
    role        text,
    action      text NOT NULL,            -- e.g. "POST /v1/gateways" or "preset.finished"
    target      text NOT NULL DEFAULT '', -- the concrete path or object
    source      text NOT NULL DEFAULT '', -- client address
    outcome     text NOT NULL,            -- ok, denied, invalid, failed, error
    status      integer,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_time_idx ON audit_log (time DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, time DESC);

-- one row per API call made with an API key: what the data-service dashboards count
CREATE TABLE api_calls (
    time         timestamptz NOT NULL,
    key_id       integer NOT NULL,
    method       text NOT NULL,
    route        text NOT NULL,           -- the path template, not the concrete path
    status       smallint NOT NULL,
    duration_ms  real NOT NULL
);
SELECT create_hypertable('api_calls', 'time', chunk_time_interval => interval '7 days');
CREATE INDEX api_calls_key_time_idx ON api_calls (key_id, time DESC);
