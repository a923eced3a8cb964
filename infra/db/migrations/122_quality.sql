-- 数据治理 (issue #15), quality: rules per dataset (loaded from YAML, datafoundation/quality),
-- their runs and results with a masked sample of failing rows, the rows a hard rule set aside,
-- daily scores on the GB/T 36344 dimensions and the 校核纠错 tasks sent to the providing
-- department. Everything is keyed by the dataset id of migration 120.

CREATE SCHEMA IF NOT EXISTS quality;

-- the YAML as loaded (the truth a person wrote) and the rules it compiled to
CREATE TABLE quality.rule_sets (
    dataset_id      text PRIMARY KEY REFERENCES datasets(id) ON DELETE CASCADE,
    source          text NOT NULL,
    correction_days smallint NOT NULL DEFAULT 5 CHECK (correction_days BETWEEN 1 AND 60),
    loaded_at       timestamptz NOT NULL DEFAULT now(),
    loaded_by       text NOT NULL DEFAULT ''
);

CREATE TABLE quality.rules (
    dataset_id  text NOT NULL REFERENCES quality.rule_sets(dataset_id) ON DELETE CASCADE,
    name        text NOT NULL,
    position    integer NOT NULL,
    kind        text NOT NULL,
    dimension   text NOT NULL CHECK (dimension IN
        ('完整性', '规范性', '准确性', '一致性', '时效性', '可访问性')),
    hard        boolean NOT NULL DEFAULT false,   -- failing rows are set aside (quarantine)
    spec        jsonb NOT NULL,                    -- the rule as written (validated)
    description text NOT NULL DEFAULT '',
    PRIMARY KEY (dataset_id, name)
);

CREATE TABLE quality.runs (
    id          bigserial PRIMARY KEY,
    dataset_id  text NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    trigger     text NOT NULL CHECK (trigger IN ('sync', 'layer', 'manual')),
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    state       text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'succeeded', 'failed')),
    row_count   bigint,
    columns     jsonb,            -- {column: type} as found: the next run's schema-change baseline
    score       numeric(5, 2),    -- mean of the dimensions' scores, 0-100
    error       text
);
CREATE INDEX quality_runs_dataset_idx ON quality.runs (dataset_id, id DESC);

CREATE TABLE quality.results (
    run_id      bigint NOT NULL REFERENCES quality.runs(id) ON DELETE CASCADE,
    rule        text NOT NULL,
    kind        text NOT NULL,
    dimension   text NOT NULL,
    hard        boolean NOT NULL,
    checked     bigint NOT NULL,   -- rows (or 1 for a dataset-level rule)
    failed      bigint NOT NULL,
    passed      boolean NOT NULL,
    detail      text NOT NULL DEFAULT '',
    sample      jsonb NOT NULL DEFAULT '[]',   -- up to a few failing rows, masked by mask_kind
    PRIMARY KEY (run_id, rule)
);

-- rows failing a hard rule, copied here (never vanish) and kept out of the layer above while
-- open; released when a later run finds the row passing. row_key is the dataset's primary key
-- as JSON ({"id": 17}), how quality.passed() matches rows.
CREATE TABLE quality.quarantine (
    id          bigserial PRIMARY KEY,
    dataset_id  text NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    rule        text NOT NULL,
    row_key     jsonb NOT NULL,
    row_data    jsonb NOT NULL,    -- the row as found, masked by mask_kind
    reason      text NOT NULL,
    run_id      bigint NOT NULL REFERENCES quality.runs(id) ON DELETE CASCADE,
    found_at    timestamptz NOT NULL DEFAULT now(),
    released_at timestamptz,
    released_run_id bigint REFERENCES quality.runs(id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX quality_quarantine_open_idx ON quality.quarantine (dataset_id, rule, row_key)
    WHERE released_at IS NULL;
CREATE INDEX quality_quarantine_key_idx ON quality.quarantine (dataset_id, row_key)
    WHERE released_at IS NULL;

-- one row per dataset, day and dimension: the day's last run decides it
CREATE TABLE quality.daily_scores (
    day           date NOT NULL,
    dataset_id    text NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    department_id text NOT NULL REFERENCES departments(id),
    dimension     text NOT NULL,
    score         numeric(5, 2) NOT NULL,
    rules         integer NOT NULL,
    failed_rules  integer NOT NULL,
    run_id        bigint NOT NULL REFERENCES quality.runs(id) ON DELETE CASCADE,
    PRIMARY KEY (day, dataset_id, dimension)
);
CREATE INDEX quality_daily_scores_department_idx ON quality.daily_scores (department_id, day);

-- 校核纠错: a failed rule asks the providing department to correct its data, within a number of
-- working days; closed by the first later run in which the rule passes
CREATE TABLE quality.tasks (
    id            bigserial PRIMARY KEY,
    dataset_id    text NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    rule          text NOT NULL,
    department_id text NOT NULL REFERENCES departments(id),
    state         text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    failed        bigint NOT NULL,
    detail        text NOT NULL DEFAULT '',
    sample        jsonb NOT NULL DEFAULT '[]',
    opened_at     timestamptz NOT NULL DEFAULT now(),
    due_at        timestamptz NOT NULL,
    opened_run_id bigint NOT NULL REFERENCES quality.runs(id) ON DELETE CASCADE,
    last_run_id   bigint NOT NULL REFERENCES quality.runs(id) ON DELETE CASCADE,
    closed_at     timestamptz,
    closed_run_id bigint REFERENCES quality.runs(id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX quality_tasks_open_idx ON quality.tasks (dataset_id, rule) WHERE state = 'open';
CREATE INDEX quality_tasks_department_idx ON quality.tasks (department_id, state);

-- The contract with the standard layer (docs/data-foundation.md, "Quality"): a model reads a
-- dataset's rows through quality.passed(NULL::<schema>.<table>), which leaves out every row
-- currently held by a hard rule and, for a raw table, rows deleted at the source.
CREATE OR REPLACE FUNCTION quality.passed(_of anyelement) RETURNS SETOF anyelement
LANGUAGE plpgsql STABLE AS $$
DECLARE
    rel regclass := pg_typeof(_of)::text::regclass;
    dataset text;
    keys text[];
    live text := 'true';
BEGIN
    SELECT n.nspname || '.' || c.relname INTO dataset
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel;
    SELECT primary_key INTO keys FROM datasets WHERE id = dataset;
    IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = rel AND attname = '_deleted_at'
               AND NOT attisdropped) THEN
        live := 't._deleted_at IS NULL';
    END IF;
    IF keys IS NULL OR cardinality(keys) = 0 THEN
        RETURN QUERY EXECUTE format('SELECT t.* FROM %s t WHERE %s', rel, live);
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT t.* FROM %s t WHERE %s AND NOT EXISTS (SELECT 1 FROM quality.quarantine q '
        'WHERE q.dataset_id = %L AND q.released_at IS NULL AND q.row_key = '
        'jsonb_build_object(%s))', rel, live, dataset,
        (SELECT string_agg(format('%L, t.%I', k, k), ', ') FROM unnest(keys) k));
END
$$;
COMMENT ON FUNCTION quality.passed(anyelement) IS
    'The rows of a dataset not held in quality.quarantine by a hard rule (and not deleted)';
