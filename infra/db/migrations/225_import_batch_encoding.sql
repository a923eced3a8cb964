-- The encoding an economy import file was read in (UTF-8, GBK, UTF-16, xlsx): shown in the
-- console's batch list (issue 18), so a garbled name can be traced to its file. Batches loaded
-- before this migration have none.
ALTER TABLE import_batches ADD COLUMN encoding text;
