-- 数据汇聚: a sync may follow a MariaDB/MySQL binlog (mode 'cdc'); its position (file, pos) is
-- kept in sync_state.cursor_key, committed with the rows each event changed.
ALTER TABLE syncs DROP CONSTRAINT syncs_mode_check;
ALTER TABLE syncs ADD CONSTRAINT syncs_mode_check CHECK (mode IN ('full', 'incremental', 'cdc'));
