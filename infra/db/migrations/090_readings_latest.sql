-- The latest reading of each point, kept by ingestion (ingestion/sink.py) in the transaction
-- that stores the readings, once per batch: "latest of 1,000 devices" and the big screen read
-- one row per point here instead of probing the readings index once per point (no SkipScan
-- in the Apache build). A point's value is in `value` (numeric) or `text` (string points).
-- fillfactor 50: every store updates these rows; room on the page keeps the updates HOT.
-- No foreign key to points (as readings has none): a store racing a point's deletion must
-- not be refused; the trigger below removes a deleted point's row, readers join points.
CREATE TABLE readings_latest (
    point_id  integer PRIMARY KEY,
    time      timestamptz NOT NULL,
    value     double precision,
    text      text,
    quality   smallint NOT NULL
) WITH (fillfactor = 50);

CREATE FUNCTION readings_latest_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM readings_latest WHERE point_id = OLD.id;
    RETURN OLD;
END $$;
CREATE TRIGGER points_forget_latest AFTER DELETE ON points
    FOR EACH ROW EXECUTE FUNCTION readings_latest_forget();

-- Re-read the latest rows from readings, for points written outside ingestion (imports,
-- tests, bench data) or all points (NULL): one index probe per point. Never moves a row
-- back in time.
CREATE FUNCTION readings_latest_refresh(ids integer[] DEFAULT NULL) RETURNS bigint
LANGUAGE sql AS $$
    WITH found AS (
        SELECT p.id, r.time, r.value, NULL::text AS text, r.quality FROM points p
        CROSS JOIN LATERAL (SELECT time, value, quality FROM readings
            WHERE point_id = p.id ORDER BY time DESC LIMIT 1) r
        WHERE p.data_type <> 'string' AND (ids IS NULL OR p.id = ANY(ids))
        UNION ALL
        SELECT p.id, r.time, NULL, r.value, r.quality FROM points p
        CROSS JOIN LATERAL (SELECT time, value, quality FROM readings_text
            WHERE point_id = p.id ORDER BY time DESC LIMIT 1) r
        WHERE p.data_type = 'string' AND (ids IS NULL OR p.id = ANY(ids))
        ORDER BY 1),
    kept AS (
        INSERT INTO readings_latest AS l (point_id, time, value, text, quality)
        SELECT * FROM found
        ON CONFLICT (point_id) DO UPDATE SET time = excluded.time, value = excluded.value,
            text = excluded.text, quality = excluded.quality
        WHERE excluded.time > l.time
        RETURNING 1)
    SELECT count(*) FROM kept
$$;

SELECT readings_latest_refresh();
