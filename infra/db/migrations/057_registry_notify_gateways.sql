-- Ingest workers also keep the set of registered gateways (ingestion/registry.py): telemetry of a
-- gateway unknown here belongs to another deployment on the same broker and is not dead-lettered
-- here. Registering or deleting a gateway notifies them; status updates (last_status) do not.
CREATE TRIGGER gateways_registry_notify
    AFTER INSERT OR DELETE OR UPDATE OF id OR TRUNCATE ON gateways
    FOR EACH STATEMENT EXECUTE FUNCTION notify_registry_change();
