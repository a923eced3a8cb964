-- Co-handling (跨部门协同处置, issue #18 item 2; docs/city-operations.md "Co-handling"): the
-- lead department (主办) is the event's own department_id and works the event's own workflow;
-- each co-handling department (协办) gets a task here with its own clock, feedback and the
-- lead's evaluation. 催办 reminders of any task (the lead's too) are kept in event_reminders,
-- which the notification worker reads (kinds event_reminder, event_escalated).

CREATE TABLE event_tasks (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       bigint NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    department_id  text NOT NULL REFERENCES departments(id),
    -- assigned (派发) -> processing (签收) -> done (反馈); released (解除) by the dispatcher;
    -- the lead's 'unsatisfied' evaluation sends a done task back to processing
    state          text NOT NULL DEFAULT 'assigned'
        CHECK (state IN ('assigned', 'processing', 'done', 'released')),
    instructions   text NOT NULL DEFAULT '',       -- what the dispatcher asks of it
    assigned_by    text NOT NULL,
    assigned_at    timestamptz NOT NULL,
    -- the clock: unit, limit in seconds of its unit (working seconds for work units)
    unit           text NOT NULL CHECK (unit IN ('work_hours', 'work_days', 'hours')),
    limit_s        double precision NOT NULL CHECK (limit_s > 0),
    deadline_at    timestamptz NOT NULL,
    accepted_at    timestamptz,
    done_at        timestamptz,
    done_on_time   boolean,
    feedback       text NOT NULL DEFAULT '',
    feedback_transition_id bigint REFERENCES event_transitions(id),
    rating         text CHECK (rating IN ('satisfied', 'fair', 'unsatisfied')),
    rating_note    text NOT NULL DEFAULT '',
    rated_by       text,
    rated_at       timestamptz,
    rework_count   integer NOT NULL DEFAULT 0,
    released_at    timestamptz,
    release_note   text NOT NULL DEFAULT '',
    updated_at     timestamptz NOT NULL
);
-- one live task per department and event (a released one may be assigned again)
CREATE UNIQUE INDEX event_tasks_live_idx ON event_tasks (event_id, department_id)
    WHERE state <> 'released';
CREATE INDEX event_tasks_open_idx ON event_tasks (deadline_at)
    WHERE state IN ('assigned', 'processing');
CREATE INDEX event_tasks_department_idx ON event_tasks (department_id, assigned_at);

CREATE TABLE event_reminders (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       bigint NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    task_id        bigint REFERENCES event_tasks(id) ON DELETE CASCADE,  -- NULL: the lead's
    department_id  text NOT NULL,
    number         integer NOT NULL CHECK (number >= 1),   -- the task's nth reminder
    reason         text NOT NULL CHECK (reason IN ('manual', 'low', 'overdue')),
    escalated      boolean NOT NULL,                       -- also to the department's leader
    note           text NOT NULL DEFAULT '',
    actor          text NOT NULL,
    at             timestamptz NOT NULL,
    -- the clock it was about (the lead's step start; a task's assignment), so the automatic
    -- reminders are made once per clock
    clock_ref      text NOT NULL,
    transition_id  bigint REFERENCES event_transitions(id)
);
CREATE INDEX event_reminders_event_idx ON event_reminders (event_id, id);
CREATE INDEX event_reminders_at_idx ON event_reminders (at);
CREATE UNIQUE INDEX event_reminders_auto_idx ON event_reminders (clock_ref, reason)
    WHERE reason <> 'manual';
