-- Calls of the catalogue's data route per resource: the API's metering (api_calls) records
-- the route template only, which does not tell one resource from another.
CREATE TABLE resource_calls (
    time           timestamptz NOT NULL,
    resource_code  text NOT NULL,
    caller         text NOT NULL,        -- username or API key name
    key_id         integer,              -- api_keys.id when called with a key
    ok             boolean NOT NULL,     -- false: refused (no live grant)
    rows           integer NOT NULL DEFAULT 0
);
SELECT create_hypertable('resource_calls', 'time', chunk_time_interval => interval '30 days');
CREATE INDEX resource_calls_resource_idx ON resource_calls (resource_code, time DESC);
