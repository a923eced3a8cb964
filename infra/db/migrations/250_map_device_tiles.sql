-- The device layer's low-zoom tiles for callers who see every department, encoded once when
-- devices change (spatial/device_cells.py, docs/map.md): cutting a zoom-10 tile from the
-- cells still grouped and transformed ~3,000 cells per request (12-70 ms, bench-map); a
-- stored tile is one primary-key read.
CREATE TABLE map_device_tiles (
    z    smallint NOT NULL,
    x    integer NOT NULL,
    y    integer NOT NULL,
    mvt  bytea NOT NULL,
    PRIMARY KEY (z, x, y)
);
-- the tiles are made with the cells: stale together, refreshed together
UPDATE map_cells_state SET dirty = true;
