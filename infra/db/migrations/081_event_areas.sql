-- An event's grid cell, community, town and responsible department come from its point
-- (issue 16: no more typing grid codes). A trigger, so that every writer (the API, Open311,
-- alarms opening events, imports) gets the same answer; the lookups use areas_geom_idx.
CREATE FUNCTION events_assign_areas() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    p geometry;
    cell text;
BEGIN
    IF NEW.longitude IS NULL OR NEW.latitude IS NULL THEN
        NEW.town_code := NULL; NEW.community_code := NULL;
        NEW.area_department_id := NULL; NEW.area_assigned := NULL;
        RETURN NEW;
    END IF;
    p := ST_SetSRID(ST_MakePoint(NEW.longitude, NEW.latitude), 4490);
    -- the smallest containing area of each kind: nested imports overlap at their edges
    SELECT code INTO cell FROM areas WHERE kind = 'grid' AND ST_Intersects(geom, p)
        ORDER BY ST_Area(geom), code LIMIT 1;
    NEW.community_code := (SELECT code FROM areas WHERE kind = 'community'
        AND ST_Intersects(geom, p) ORDER BY ST_Area(geom), code LIMIT 1);
    NEW.town_code := (SELECT code FROM areas WHERE kind = 'town'
        AND ST_Intersects(geom, p) ORDER BY ST_Area(geom), code LIMIT 1);
    -- several departments may cover the point: the category's own department first
    NEW.area_department_id := (SELECT a.department_id FROM areas a
        WHERE a.kind = 'responsibility' AND ST_Intersects(a.geom, p)
        ORDER BY a.department_id IS NOT DISTINCT FROM (SELECT c.department_id
                 FROM event_categories c WHERE c.code = NEW.category_code) DESC,
                 ST_Area(a.geom), a.code
        LIMIT 1);
    NEW.area_assigned := cell IS NOT NULL;
    IF cell IS NOT NULL THEN
        NEW.grid := cell;  -- a typed code is kept only where no cell contains the point
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER events_assign_areas BEFORE INSERT OR UPDATE OF latitude, longitude ON events
    FOR EACH ROW EXECUTE FUNCTION events_assign_areas();
