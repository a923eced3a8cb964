-- 部门工作台 (issue 18 item 1, docs/console.md): a department's staff answer their 校核纠错
-- tasks from the console. A comment is kept beside the task; "resolved" closes the task by a
-- person (closed_by, resolution) rather than by a passing run (closed_run_id). If the data
-- still fails, the next quality run opens a new task (the unique index covers open tasks only).
ALTER TABLE quality.tasks
    ADD COLUMN closed_by  text,
    ADD COLUMN resolution text;

CREATE TABLE quality.task_notes (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id  bigint NOT NULL REFERENCES quality.tasks(id) ON DELETE CASCADE,
    kind     text NOT NULL CHECK (kind IN ('comment', 'resolve')),
    note     text NOT NULL CHECK (length(note) BETWEEN 1 AND 2000),
    author   text NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quality_task_notes_task_idx ON quality.task_notes (task_id, id);
