-- Device clusters for the map's low zooms (docs/map.md, bench-map): grouping 100,000 devices
-- per tile request took 150 ms to seconds; these rows hold the groups per zoom (8 to 12), per
-- cell of 1/64 tile and per department, refreshed by the API when devices have changed.
CREATE TABLE map_device_cells (
    z             smallint NOT NULL,
    cx            integer NOT NULL,
    cy            integer NOT NULL,
    department_id text,
    count         integer NOT NULL,
    unowned       integer NOT NULL,
    geom          geometry(Point, 4490) NOT NULL      -- the members' mean position
);
CREATE INDEX map_device_cells_geom_idx ON map_device_cells USING gist (geom);
CREATE INDEX map_device_cells_z_idx ON map_device_cells (z);

-- one row: whether devices changed since the cells were computed
CREATE TABLE map_cells_state (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    dirty     boolean NOT NULL DEFAULT true
);
INSERT INTO map_cells_state DEFAULT VALUES;

CREATE FUNCTION map_cells_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- no lock taken when already dirty: only the first write after a refresh marks it
    UPDATE map_cells_state SET dirty = true WHERE NOT dirty;
    RETURN NULL;
END $$;

CREATE TRIGGER devices_map_cells AFTER INSERT OR DELETE OR UPDATE OF longitude, latitude,
    department_id ON devices FOR EACH STATEMENT EXECUTE FUNCTION map_cells_dirty();
