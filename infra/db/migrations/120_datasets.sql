-- 数据治理 (issue #15): the governed datasets, one register for every layer. Raw tables made by
-- the syncs (raw_<system>.<table>), the standard layer (std.<name>) and the topic layer
-- (topic.<name>) are each a dataset; quality rules, lineage, the catalogue entry and the data
-- service all name a dataset by its id. Fields carry their data element (数据元, DB33/T 2426)
-- and the sensitivity that decides masking in every read.

CREATE SCHEMA IF NOT EXISTS std;
CREATE SCHEMA IF NOT EXISTS topic;

CREATE TABLE datasets (
    -- '<layer schema>.<table>', e.g. 'raw_scjg_qydj.enterprises', 'std.enterprises'
    id             text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_]{0,62}\.[a-z][a-z0-9_]{0,62}$'),
    name           text NOT NULL,                          -- 中文名称
    layer          text NOT NULL CHECK (layer IN ('raw', 'standard', 'topic')),
    department_id  text NOT NULL REFERENCES departments(id),   -- the providing department
    system_id      bigint REFERENCES systems(id),          -- the system it comes from
    sync_id        bigint REFERENCES syncs(id),            -- raw layer: the sync that loads it
    primary_key    text[] NOT NULL DEFAULT '{}',
    description    text NOT NULL DEFAULT '',
    update_cycle   text NOT NULL DEFAULT 'daily' CHECK (update_cycle IN ('realtime', 'hourly',
        'daily', 'weekly', 'monthly', 'quarterly', 'yearly', 'irregular')),
    -- its 政务信息资源目录 entry, once registered (the catalogue's resources.code)
    resource_code  text REFERENCES resources(code),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX datasets_department_idx ON datasets (department_id);

CREATE TABLE dataset_fields (
    dataset_id   text NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    name         text NOT NULL,                            -- the column
    position     integer NOT NULL,
    data_type    text NOT NULL,                            -- PostgreSQL type as declared
    title        text NOT NULL DEFAULT '',                 -- 中文名称 of the field
    element_id   text,                                     -- 数据元 标识符, when mapped
    -- 敏感级别: 0 public, 1 internal, 2 sensitive, 3 secret; masking follows mask_kind
    sensitivity  smallint NOT NULL DEFAULT 0 CHECK (sensitivity BETWEEN 0 AND 3),
    mask_kind    text NOT NULL DEFAULT 'none'
        CHECK (mask_kind IN ('none', 'id_card', 'phone', 'name', 'full')),
    PRIMARY KEY (dataset_id, name)
);
