-- The readings API reads a day of one point's 1-minute buckets (1,440 rows). Rollup rows are
-- written minute by minute for all points at once, so one point's rows sit on as many heap
-- pages as it has buckets: ~17 ms a day. With the values in the index, PostgreSQL answers
-- from the index alone (an index-only scan, ~1 ms). Measured with `make bench-api`.
CREATE INDEX rollup_1m_point_bucket_cover ON rollup_1m (point_id, bucket)
    INCLUDE (sum, count, min, max);
CREATE INDEX rollup_1h_point_bucket_cover ON rollup_1h (point_id, bucket)
    INCLUDE (sum, count, min, max);
