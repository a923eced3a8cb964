-- 数据汇聚: a first load too big for one worker is split by primary-key ranges (as DataX
-- splits by key), each range a job of its own with its own resume point, committed with its
-- rows (exactly-once per range); the last range to finish completes the run.
ALTER TABLE syncs ADD COLUMN split_ranges smallint NOT NULL DEFAULT 1
    CHECK (split_ranges BETWEEN 1 AND 32);

CREATE TABLE sync_ranges (
    run_id      bigint NOT NULL REFERENCES sync_runs(id),
    range_no    smallint NOT NULL,
    first_key   text NOT NULL,          -- inclusive bounds of the (single, integer) key
    last_key    text NOT NULL,
    done_key    jsonb,                  -- the last key committed: where a killed range resumes
    finished    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (run_id, range_no)
);
-- the source's highest cursor when the split load began: the next incremental run starts there
ALTER TABLE sync_runs ADD COLUMN high_water text;
