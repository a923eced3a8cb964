-- The map, live (docs/map.md): changes announced on the live channel (api/services/live.py)
-- so that every API process drops the tiles it cached for the changed layer at once
-- (spatial/tile_cache.py), and the big screen moves an event's dot without reloading tiles.

-- devices, sites, areas: one note per statement (an import of 10,000 rows is one note)
CREATE FUNCTION map_notify_table() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cityops_live', json_build_object('kind', 'map',
                                                        'table', TG_TABLE_NAME)::text);
    RETURN NULL;
END $$;

CREATE TRIGGER devices_map_notify AFTER INSERT OR DELETE OR UPDATE OF longitude, latitude,
    department_id, title, profile_id ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION map_notify_table();
CREATE TRIGGER sites_map_notify AFTER INSERT OR DELETE OR UPDATE ON sites
    FOR EACH STATEMENT EXECUTE FUNCTION map_notify_table();
CREATE TRIGGER areas_map_notify AFTER INSERT OR DELETE OR UPDATE ON areas
    FOR EACH STATEMENT EXECUTE FUNCTION map_notify_table();

-- events: one note per changed event with what the map draws (events change at the pace of
-- people: reported, dispatched, closed), its light as the tiles compute it (spatial/tiles.py)
CREATE FUNCTION map_notify_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    e events%ROWTYPE;
BEGIN
    IF TG_OP = 'DELETE' THEN e := OLD; ELSE e := NEW; END IF;
    PERFORM pg_notify('cityops_live', json_build_object(
        'kind', 'event', 'id', e.id, 'state', CASE WHEN TG_OP = 'DELETE' THEN 'cancelled'
                                                   ELSE e.state END,
        'category', e.category_code, 'urgency', e.urgency, 'department', e.department_id,
        'longitude', e.longitude, 'latitude', e.latitude, 'assigned', e.area_assigned,
        'light', CASE WHEN e.state IN ('closed', 'cancelled') THEN NULL
            WHEN now() > least(e.step_deadline_at, e.total_deadline_at) THEN 'red'
            WHEN e.step_deadline_at IS NOT NULL
                 AND extract(epoch FROM now() - e.step_started_at)
                     >= 0.8 * extract(epoch FROM e.step_deadline_at - e.step_started_at)
                 THEN 'yellow'
            ELSE 'green' END)::text);
    RETURN NULL;
END $$;

CREATE TRIGGER events_map_notify AFTER INSERT OR DELETE OR UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION map_notify_event();
