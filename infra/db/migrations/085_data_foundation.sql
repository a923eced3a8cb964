-- 数据汇聚 (issue #14): the system register (信息系统"一本账"), its sources, sync jobs as data,
-- their cursor state and run history. Raw-layer tables live in schemas raw_<system>, made by
-- the sync itself (datafoundation/raw.py).

CREATE TABLE systems (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug           text NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9_]{0,39}$'),
    name           text NOT NULL,
    department_id  text NOT NULL REFERENCES departments(id),
    purpose        text NOT NULL DEFAULT '',
    vendor         text NOT NULL DEFAULT '',
    deployment     text NOT NULL DEFAULT 'onprem' CHECK (deployment IN ('onprem', 'cloud')),
    database_kind  text NOT NULL DEFAULT '',
    contact        text NOT NULL DEFAULT '',
    dengbao_level  smallint CHECK (dengbao_level BETWEEN 1 AND 5),
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired', 'planned')),
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sources (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    system_id   bigint NOT NULL REFERENCES systems(id),
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('mariadb', 'postgresql', 'sqlalchemy', 'file_drop',
                                              'sftp', 'http_json')),
    -- host, port, database, user, path...: never a password
    settings    jsonb NOT NULL DEFAULT '{}',
    -- the credentials, Fernet-encrypted with CITYOPS_SECRET_KEY; never returned or logged
    secret      bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (system_id, name)
);

CREATE TABLE syncs (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id           bigint NOT NULL REFERENCES sources(id),
    object              text NOT NULL,               -- table, file pattern or endpoint
    target_table        text NOT NULL CHECK (target_table ~ '^[a-z][a-z0-9_]{0,62}$'),
    mode                text NOT NULL CHECK (mode IN ('full', 'incremental')),
    cursor_column       text,
    primary_key         text[] NOT NULL,
    deletes             text NOT NULL DEFAULT 'none' CHECK (deletes IN ('none', 'soft', 'compare')),
    soft_delete_column  text,
    contract            text NOT NULL DEFAULT 'evolve' CHECK (contract IN ('evolve', 'freeze')),
    schedule            text,                        -- cron, e.g. '*/5 * * * *'
    batch_rows          integer NOT NULL DEFAULT 50000 CHECK (batch_rows > 0),
    enabled             boolean NOT NULL DEFAULT true,
    flagged             text,                        -- why a frozen contract stopped the sync
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (mode = 'full' OR cursor_column IS NOT NULL),
    CHECK (deletes <> 'soft' OR soft_delete_column IS NOT NULL),
    UNIQUE (source_id, target_table)
);

-- committed in the same transaction as each batch of rows: the exactly-once effect
CREATE TABLE sync_state (
    sync_id       bigint PRIMARY KEY REFERENCES syncs(id),
    cursor_value  text,                  -- last (cursor, key) loaded; keyset resume point
    cursor_key    jsonb,
    columns       jsonb,                 -- the source's columns as last seen: drift detection
    run_id        bigint,                -- a run in progress (a full load resumes into it)
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sync_runs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sync_id        bigint NOT NULL REFERENCES syncs(id),
    state          text NOT NULL DEFAULT 'running'
                   CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    attempt        integer NOT NULL DEFAULT 1,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    rows_read      bigint NOT NULL DEFAULT 0,
    rows_written   bigint NOT NULL DEFAULT 0,
    rows_deleted   bigint NOT NULL DEFAULT 0,
    drift          jsonb,
    error          text
);
CREATE INDEX sync_runs_sync ON sync_runs (sync_id, id DESC);
