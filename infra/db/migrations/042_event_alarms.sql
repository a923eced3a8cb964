-- Sensor alarms opening city events: which rules do, how their alarms are grouped into one
-- event, and which alarm steps were handled (the internal topic delivers at least once).

CREATE TABLE event_alarm_rules (
    rule_id        text PRIMARY KEY REFERENCES rules(id) ON DELETE CASCADE,
    category_code  text NOT NULL REFERENCES event_categories(code),
    -- one open event per rule and device, per rule and site, or per rule
    group_by       text NOT NULL DEFAULT 'device' CHECK (group_by IN ('device', 'site', 'rule')),
    urgency        text CHECK (urgency IN ('normal', 'urgent')),  -- null: critical -> urgent
    enabled        boolean NOT NULL DEFAULT true,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE event_alarm_links (
    alarm_event_id  bigint PRIMARY KEY,     -- alarm_events.id of the step handled
    alarm_id        bigint NOT NULL,
    event_id        bigint REFERENCES events(id) ON DELETE CASCADE,
    kind            text NOT NULL,          -- raised, repeated, reopened, acknowledged, cleared
    handled_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_alarm_links_event_idx ON event_alarm_links (event_id);
CREATE INDEX event_alarm_links_alarm_idx ON event_alarm_links (alarm_id);
