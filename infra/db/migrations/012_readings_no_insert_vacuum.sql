-- No autovacuum triggered by inserts alone on the raw readings hypertables (their chunks
-- inherit the option, new ones too). Such a vacuum of a chunk being written only sets
-- visibility-map bits, and with data checksums on (the local cluster has them) every heap
-- page it marks after a checkpoint is written whole to the WAL: measured with
-- `make bench-ingest` at 120,000 readings/s, one such vacuum wrote 430 MB of WAL in a second
-- and commits stalled for ~700 ms. Nothing reads these tables index-only (no index holds the
-- values), so the visibility map buys little here; analyze still runs on inserts, and
-- vacuums for dead rows and against XID wraparound are unchanged.
ALTER TABLE readings SET (autovacuum_vacuum_insert_threshold = -1);
ALTER TABLE readings_text SET (autovacuum_vacuum_insert_threshold = -1);
