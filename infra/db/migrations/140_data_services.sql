-- 数据服务 (issue #15): a grant says which fields of the resource's dataset it covers, which of
-- them are served in the clear (every other sensitive field is masked), and which rows (a filter
-- the provider sets, e.g. one town or one department). Calls of the dataset service are counted
-- per dataset, refused ones too, for the service registry (/v1/services) and the panoramas.

-- fields: NULL means every field of the dataset; row_scope: {"<field>": {"in": [...]}} or
-- {"<field>": {"prefix": [...]}}, each condition ANDed; {} means every row
ALTER TABLE grants
    ADD COLUMN fields text[],
    ADD COLUMN unmasked_fields text[] NOT NULL DEFAULT '{}',
    ADD COLUMN row_scope jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(row_scope) = 'object');

CREATE TABLE dataset_calls (
    time        timestamptz NOT NULL,
    dataset_id  text NOT NULL,
    caller      text NOT NULL,          -- username or API key name
    key_id      integer,                -- api_keys.id when called with a key
    ok          boolean NOT NULL,       -- false: refused (no grant, field or rows not granted)
    rows        integer NOT NULL DEFAULT 0,
    refused     text                    -- what was not granted (field names, never values)
);
SELECT create_hypertable('dataset_calls', 'time', chunk_time_interval => interval '30 days');
CREATE INDEX dataset_calls_dataset_idx ON dataset_calls (dataset_id, time DESC);

-- keys issued by the portal before this migration may read the dataset service too
UPDATE api_keys SET routes = array_append(routes, 'GET /v1/datasets/{dataset_id}/rows')
WHERE name LIKE 'portal-%' AND NOT ('GET /v1/datasets/{dataset_id}/rows' = ANY (routes));
