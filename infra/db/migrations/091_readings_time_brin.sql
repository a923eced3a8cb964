-- A cheaper time index on readings (docs/ingestion.md, "The time index"): TimescaleDB's
-- default B-tree on readings (time) cost about a quarter of the COPY rate, and only queries
-- over all points by time alone use it (the rollup refresh, a day's data quality, the data
-- catalogue's sample rows); per-point queries use readings_point_time_idx. A BRIN over time
-- (readings arrive in time order, so page ranges hold narrow time ranges) answers those
-- range scans for a small fraction of the write cost. New page ranges are summarized by the
-- rollup refresh (brin_summarize_new_values on the chunks it reads); until then a range is
-- read whole, which costs time, never answers.
-- Only with the platform's rollup tables: on the licensed build TimescaleDB's continuous
-- aggregates read readings by time in their own refresh, which summarizes nothing, so there
-- the B-tree stays (migration 017 chose the backend).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM timescaledb_information.continuous_aggregates
                   WHERE view_schema = current_schema() AND view_name = 'rollup_1m') THEN
        DROP INDEX IF EXISTS readings_time_idx;
        CREATE INDEX IF NOT EXISTS readings_time_brin ON readings USING brin (time)
            WITH (pages_per_range = 32);
    END IF;
END $$;
