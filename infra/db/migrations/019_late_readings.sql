-- Readings that arrived late: stamped more than 5 minutes before the batch was committed
-- (a gateway draining its queue after an outage, or a clock far behind). Counted per batch by
-- the ingest worker; the data-quality dashboard divides them by the batch's readings.
ALTER TABLE ingested_batches ADD COLUMN late integer NOT NULL DEFAULT 0 CHECK (late >= 0);
