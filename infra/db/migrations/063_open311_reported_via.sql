-- Who submitted a citizen's request through Open311 ("api_key:<name>" for a citizen
-- application, "user:<name>" for the hotline desk): GET requests.json lists an application
-- only what it reported itself.
ALTER TABLE events ADD COLUMN reported_via text;
CREATE INDEX events_reported_via_idx ON events (reported_via, id DESC)
    WHERE reported_via IS NOT NULL;
