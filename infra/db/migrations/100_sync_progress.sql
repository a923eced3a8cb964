-- 数据汇聚: what a run expects to read (the source's row estimate, for a first or full load),
-- so its live progress can say how many seconds are left.
ALTER TABLE sync_runs ADD COLUMN rows_expected bigint;

-- a binlog follower (mode cdc) needs no cursor column: only an incremental pass does
ALTER TABLE syncs DROP CONSTRAINT syncs_check;
ALTER TABLE syncs ADD CONSTRAINT syncs_cursor_check
    CHECK (mode <> 'incremental' OR cursor_column IS NOT NULL);
