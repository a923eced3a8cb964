-- Cameras and facilities on the map (一张图, docs/map.md): things with a place that the
-- platform does not poll: the 雪亮工程 video points (kind 'camera', their channel code in
-- `code`, e.g. a GB/T 28181 id), hydrants, shelters, schools, pumping stations... One table,
-- one `kind` column: the map draws cameras apart, the rest as facilities.
CREATE TABLE facilities (
    id            text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}$'),
    kind          text NOT NULL CHECK (kind ~ '^[a-z][a-z_]{1,30}$'),
    name          text NOT NULL DEFAULT '',
    code          text NOT NULL DEFAULT '',
    department_id text REFERENCES departments(id),
    longitude     double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    latitude      double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    geom          geometry(Point, 4490) GENERATED ALWAYS AS
                      (ST_SetSRID(ST_MakePoint(longitude, latitude), 4490)) STORED,
    attributes    jsonb NOT NULL DEFAULT '{}',
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX facilities_geom_idx ON facilities USING gist (geom);
CREATE INDEX facilities_kind_idx ON facilities (kind);

CREATE TRIGGER facilities_map_notify AFTER INSERT OR DELETE OR UPDATE ON facilities
    FOR EACH STATEMENT EXECUTE FUNCTION map_notify_table();
