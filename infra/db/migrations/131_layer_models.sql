-- 数据治理 (issue #15), layers: each raw → standard → topic step is a model declared in a
-- versioned file (governance/models/*.yaml); here the version the platform last loaded, each
-- run (rows in, out and rejected), the rows a model's hard rules rejected (with the reason,
-- never dropped silently), and the lineage edges its declaration gives.

CREATE TABLE layer_models (
    name         text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    layer        text NOT NULL CHECK (layer IN ('standard', 'topic')),
    target       text NOT NULL UNIQUE,           -- the dataset it builds
    upstream     text[] NOT NULL,                -- the datasets it reads
    version      integer NOT NULL,               -- as declared in the file
    digest       text NOT NULL,                  -- sha256 of the file: an edit shows
    file         text NOT NULL,
    declaration  jsonb NOT NULL,
    loaded_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE layer_model_runs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model          text NOT NULL REFERENCES layer_models(name) ON DELETE CASCADE,
    version        integer NOT NULL,
    digest         text NOT NULL,
    state          text NOT NULL DEFAULT 'running'
        CHECK (state IN ('running', 'succeeded', 'failed', 'skipped')),
    rows_in        bigint NOT NULL DEFAULT 0,
    rows_out       bigint NOT NULL DEFAULT 0,
    rows_rejected  bigint NOT NULL DEFAULT 0,
    unmapped       jsonb,                        -- {column: [source values without a mapping]}
    error          text,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
CREATE INDEX layer_model_runs_model ON layer_model_runs (model, id DESC);

CREATE TABLE layer_model_rejects (
    run_id      bigint NOT NULL REFERENCES layer_model_runs(id) ON DELETE CASCADE,
    model       text NOT NULL,
    dataset     text NOT NULL,                   -- the upstream dataset the row came from
    row         jsonb NOT NULL,
    reason      text NOT NULL
);
CREATE INDEX layer_model_rejects_run ON layer_model_rejects (run_id);

-- lineage at table and column level: nodes are 'source:<system>.<object>[.<column>]',
-- '<schema>.<table>[.<column>]' for datasets; resources and services are joined in at read
CREATE TABLE lineage_edges (
    src         text NOT NULL,
    dst         text NOT NULL,
    level       text NOT NULL CHECK (level IN ('table', 'column')),
    via         text NOT NULL,                   -- 'sync:<id>', 'model:<name>'
    transform   text NOT NULL DEFAULT '',        -- the expression, for a column edge
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (src, dst, level)
);
CREATE INDEX lineage_edges_dst ON lineage_edges (dst);
