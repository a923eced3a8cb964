-- What the API processes must hear to answer buckets and device lookups from memory, without
-- a query per request (issue #21, api/rollup_watch.py):
--
-- 1. Late minutes. A minute marked dirty more than a minute before the marking statement's
--    own minute (a late reading: an agent catching up after an outage, a backfill) NOTIFYs
--    `cityops_rollup_late` with the oldest such minute (epoch seconds), delivered when its
--    transaction commits, so the API stops serving the cached periods from that minute on
--    until the refresh recomputes it. Minutes marked on time are not announced: the API
--    knows them to be at most a minute before their statement's time (the refresh's
--    notification makes it read what is still dirty). Statement-level, over the statement's
--    new rows: one test per ingest transaction, one notification only for late ones.
-- 2. A device moved to another department: its department is what the API checks a caller
--    against, so the registry notification now covers it (056 covered id and gateway_id).
CREATE FUNCTION notify_late_minutes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    oldest timestamptz;
BEGIN
    SELECT min(bucket) INTO oldest FROM marked;
    IF oldest < date_trunc('minute', statement_timestamp()) - interval '1 minute' THEN
        PERFORM pg_notify('cityops_rollup_late', extract(epoch FROM oldest)::bigint::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER rollup_dirty_late_notify
    AFTER INSERT ON rollup_dirty REFERENCING NEW TABLE AS marked
    FOR EACH STATEMENT EXECUTE FUNCTION notify_late_minutes();

DROP TRIGGER devices_registry_notify ON devices;
CREATE TRIGGER devices_registry_notify
    AFTER INSERT OR DELETE OR UPDATE OF id, gateway_id, department_id OR TRUNCATE ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION notify_registry_change();
