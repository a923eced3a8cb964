-- Ingest workers keep the point registry in memory (ingestion/registry.py). Every change to
-- what they read notifies them when it commits, so a deleted device's readings stop being
-- stored under its old point ids and a re-registered device is learnt at once (issue #22).
-- Statement-level: one notification per statement (PostgreSQL folds identical ones within a
-- transaction). Updates only of the columns read: gateways' status updates must not reload.
CREATE FUNCTION notify_registry_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cityops_registry', TG_TABLE_NAME);
    RETURN NULL;
END $$;

CREATE TRIGGER points_registry_notify
    AFTER INSERT OR DELETE OR UPDATE OF id, device_id, name, data_type OR TRUNCATE ON points
    FOR EACH STATEMENT EXECUTE FUNCTION notify_registry_change();
CREATE TRIGGER devices_registry_notify
    AFTER INSERT OR DELETE OR UPDATE OF id, gateway_id OR TRUNCATE ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION notify_registry_change();
