-- 数据汇聚: rows a sync could not load are set aside here (never dropped, never failing the
-- whole run): the row as the source gave it, and why (naming the column and value). Written in
-- the same transaction as the batch they came with, so a resumed run neither loses nor
-- repeats them.
CREATE TABLE sync_quarantine (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sync_id       bigint NOT NULL REFERENCES syncs(id),
    run_id        bigint REFERENCES sync_runs(id),  -- NULL: a binlog follower's (no runs)
    source        text NOT NULL,        -- the source's name
    source_table  text NOT NULL,        -- table, file pattern or endpoint
    row           jsonb NOT NULL,       -- column -> value (text), as read
    reason        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- the same row set aside twice in one run (a resumed run re-checking NULL cursors) is kept once
CREATE UNIQUE INDEX sync_quarantine_once ON sync_quarantine (run_id, md5(reason || row::text));
CREATE INDEX sync_quarantine_sync ON sync_quarantine (sync_id, id DESC);

ALTER TABLE sync_runs ADD COLUMN rows_quarantined bigint NOT NULL DEFAULT 0;
