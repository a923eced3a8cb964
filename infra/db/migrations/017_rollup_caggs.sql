-- On a Timescale-licensed build, rollup_1m and rollup_1h become continuous aggregates with the
-- same names and columns (docs/ingestion.md, "Rollups"); on the Apache build nothing changes
-- and the platform keeps the tables of 011 itself.
--
-- Numbered 017, below 018/019: the runner applies every file not yet recorded, in name order,
-- so a database that already has 018 gets this one after it, and a new one before 018. Hence
-- the covering indexes: recreated here on the aggregates only if 018 already made them on the
-- tables; otherwise 018 makes them on the aggregates (CREATE INDEX works on an aggregate's
-- name and lands on its materialization hypertable).
--
-- Rows the tables already hold: an aggregate recomputes everything readings still hold, so
-- dropping a table loses nothing unless it has rows for buckets that end before the oldest
-- reading. Those (rollups outlive readings by design: 730 days against 180) exist nowhere
-- else, so such a table is kept, renamed *_before_caggs, neither read nor trimmed by the
-- platform: an operator may read or drop it.
DO $$
DECLARE
    had_cover boolean := to_regclass('rollup_1m_point_bucket_cover') IS NOT NULL;
    oldest timestamptz;
    older boolean;
    t text;
    step interval;
BEGIN
    IF current_setting('timescaledb.license', true) IS DISTINCT FROM 'timescale'
       OR EXISTS (SELECT FROM timescaledb_information.continuous_aggregates
                  WHERE view_schema = current_schema() AND view_name = 'rollup_1m') THEN
        RETURN;
    END IF;
    oldest := coalesce((SELECT min(time) FROM readings), 'infinity');
    FOREACH t IN ARRAY ARRAY['rollup_1m', 'rollup_1h'] LOOP
        step := CASE t WHEN 'rollup_1m' THEN interval '1 minute' ELSE interval '1 hour' END;
        EXECUTE format('SELECT EXISTS (SELECT FROM %I WHERE bucket <= $1)', t)
            INTO STRICT older USING oldest - step;
        IF older THEN
            EXECUTE format('ALTER TABLE %I RENAME TO %I', t, t || '_before_caggs');
            IF to_regclass(t || '_point_bucket_cover') IS NOT NULL THEN
                EXECUTE format('ALTER INDEX %I RENAME TO %I',
                               t || '_point_bucket_cover', t || '_before_caggs_cover');
            END IF;
            RAISE NOTICE '% holds rollups of times no reading is kept for: kept as %', t,
                t || '_before_caggs';
        ELSE
            -- one at a time: TimescaleDB refuses to drop a hypertable with other objects
            EXECUTE format('DROP TABLE %I', t);
        END IF;
    END LOOP;
    -- nothing marks or reads dirty minutes any more; the table stays so that a worker still
    -- running the previous code keeps storing (it marks minutes until it is restarted)
    TRUNCATE rollup_dirty;

    -- real-time (materialized_only = false): buckets past the last refresh are aggregated
    -- from the source at query time, so fresh readings show at once
    CREATE MATERIALIZED VIEW rollup_1m
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT time_bucket(interval '1 minute', time) AS bucket, point_id,
               sum(value) AS sum, count(value) AS count, min(value) AS min, max(value) AS max
        FROM readings WHERE quality < 2 AND value IS NOT NULL
        GROUP BY 1, 2
        WITH NO DATA;
    -- hierarchical: hours from minutes, as the platform's own refresh does
    CREATE MATERIALIZED VIEW rollup_1h
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT time_bucket(interval '1 hour', bucket) AS bucket, point_id,
               sum(sum) AS sum, sum(count)::bigint AS count, min(min) AS min, max(max) AS max
        FROM rollup_1m
        GROUP BY 1, 2
        WITH NO DATA;
    -- TimescaleDB indexes (point_id, bucket DESC) by itself; 018's covering index (values in
    -- the index, for index-only scans of one point's day) is added as explained above
    IF had_cover THEN
        CREATE INDEX rollup_1m_point_bucket_cover ON rollup_1m (point_id, bucket)
            INCLUDE (sum, count, min, max);
        CREATE INDEX rollup_1h_point_bucket_cover ON rollup_1h (point_id, bucket)
            INCLUDE (sum, count, min, max);
    END IF;

    -- Refresh windows reach back 7 days: late readings up to a week old are materialized by
    -- the policies (older ones are still answered exactly: ingestion/rollups.bucketed reads
    -- raw readings where TimescaleDB has an invalidation pending). The window must not reach
    -- chunks that retention drops (readings at 180 days, rollup_1m at 730): dropping chunks
    -- under an aggregate records an invalidation, and refreshing it would delete the
    -- rollups that are meant to outlive the readings. ingestion/retention.py refuses a retention
    -- shorter than the window.
    PERFORM add_continuous_aggregate_policy('rollup_1m', start_offset => interval '7 days',
        end_offset => interval '1 minute', schedule_interval => interval '1 minute');
    PERFORM add_continuous_aggregate_policy('rollup_1h', start_offset => interval '7 days',
        end_offset => interval '1 hour', schedule_interval => interval '10 minutes');
END $$;
