-- 从管到防 (issue #17): event analysis. Duplicate reports found at intake become merge
-- suggestions the dispatcher accepts or refuses; weekly volume forecasts are kept so that
-- their error can be measured against the weeks that came.

ALTER TABLE events ADD COLUMN merged_into bigint REFERENCES events(id);

CREATE TABLE event_merge_suggestions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     bigint NOT NULL REFERENCES events(id) ON DELETE CASCADE,   -- the new report
    duplicate_of bigint NOT NULL REFERENCES events(id) ON DELETE CASCADE,   -- the open event
    distance_m   double precision,          -- NULL: matched by address, no coordinates
    hours_apart  double precision NOT NULL,
    state        text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'accepted', 'refused', 'obsolete')),
    created_at   timestamptz NOT NULL,
    decided_at   timestamptz,
    decided_by   text,
    UNIQUE (event_id, duplicate_of),
    CHECK (event_id <> duplicate_of)
);
CREATE INDEX event_merge_suggestions_pending_idx ON event_merge_suggestions (event_id)
    WHERE state = 'pending';

CREATE TABLE event_forecasts (
    category_code text NOT NULL REFERENCES event_categories(code),
    week_start    date NOT NULL,            -- Monday, the county's time
    made_at       timestamptz NOT NULL,
    model         text NOT NULL,
    mean          double precision NOT NULL,
    lower         double precision NOT NULL,
    upper         double precision NOT NULL,
    level         double precision NOT NULL,   -- the interval's coverage, e.g. 0.8
    PRIMARY KEY (category_code, week_start, made_at)
);
