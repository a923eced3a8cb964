-- 一张图 (issue 16): geometry for areas, sites, devices and events (docs/map.md).
-- Everything is stored in CGCS2000 (EPSG:4490, longitude/latitude degrees; within about a
-- metre or so of WGS84 at county scale, so WGS84 input is stored as it is). GCJ-02 and BD-09
-- input is converted on import (spatial/crs.py); each imported layer records what it came in.
-- PostGIS is not a trusted extension: an administrator creates it (infra/local/postgres.py
-- does, in template1 and the project's database); this migration only refuses to go on
-- without it, with a message that says what to do.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'postgis') THEN
        RAISE EXCEPTION 'the postgis extension is missing: a superuser must run '
                        '"CREATE EXTENSION postgis" in this database (docs/map.md)';
    END IF;
END $$;

-- county, towns (乡镇/街道), communities, 单元网格 (GB/T 30428.1 codes) and departments'
-- responsibility areas, in one table: the same lookups serve every kind.
CREATE TABLE areas (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('county', 'town', 'community', 'grid',
                                                'responsibility')),
    code          text NOT NULL CHECK (code <> ''),
    name          text NOT NULL DEFAULT '',
    department_id text REFERENCES departments(id),
    layer         text NOT NULL DEFAULT '',      -- the import it came from (map_layers.name)
    geom          geometry(MultiPolygon, 4490) NOT NULL CHECK (ST_IsValid(geom)),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, code),
    CHECK (kind <> 'responsibility' OR department_id IS NOT NULL)
);
CREATE INDEX areas_geom_idx ON areas USING gist (geom);
CREATE INDEX areas_kind_idx ON areas (kind);

-- one row per import: the coordinate system the file was in and what became of its rows
CREATE TABLE map_layers (
    name         text PRIMARY KEY,
    kind         text NOT NULL,                  -- an area kind, or 'devices' / 'sites'
    source_crs   text NOT NULL CHECK (source_crs IN ('CGCS2000', 'WGS84', 'GCJ-02', 'BD-09')),
    rows_stored  integer NOT NULL DEFAULT 0,
    report       jsonb NOT NULL DEFAULT '[]',    -- rows refused, repaired or outside the county
    imported_at  timestamptz NOT NULL DEFAULT now()
);

-- points: generated from the latitude/longitude columns, so every writer keeps them in step
ALTER TABLE sites ADD COLUMN latitude double precision CHECK (latitude BETWEEN -90 AND 90);
ALTER TABLE sites ADD COLUMN longitude double precision CHECK (longitude BETWEEN -180 AND 180);
ALTER TABLE sites ADD COLUMN geom geometry(Point, 4490) GENERATED ALWAYS AS (
    ST_SetSRID(ST_MakePoint(longitude, latitude), 4490)) STORED;
ALTER TABLE devices ADD COLUMN geom geometry(Point, 4490) GENERATED ALWAYS AS (
    ST_SetSRID(ST_MakePoint(longitude, latitude), 4490)) STORED;
ALTER TABLE events ADD COLUMN geom geometry(Point, 4490) GENERATED ALWAYS AS (
    ST_SetSRID(ST_MakePoint(longitude, latitude), 4490)) STORED;
CREATE INDEX sites_geom_idx ON sites USING gist (geom);
CREATE INDEX devices_geom_idx ON devices USING gist (geom);
CREATE INDEX events_geom_idx ON events USING gist (geom);

-- what an event's point falls in, derived when it is reported or moved (trigger below);
-- area_assigned is false for a point outside every grid cell: stored, flagged, shown
ALTER TABLE events ADD COLUMN town_code text;
ALTER TABLE events ADD COLUMN community_code text;
ALTER TABLE events ADD COLUMN area_department_id text REFERENCES departments(id);
ALTER TABLE events ADD COLUMN area_assigned boolean;
