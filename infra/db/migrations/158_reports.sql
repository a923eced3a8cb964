-- 城市运行分析报告 (issue #17 item 5): generated reports, archived with their files. One report
-- per kind and period; generating it again replaces the files and keeps the first creation.
CREATE TABLE reports (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('monthly', 'weekly')),
    period_start  timestamptz NOT NULL,
    period_end    timestamptz NOT NULL,
    title         text NOT NULL,
    pdf           bytea NOT NULL,
    docx          bytea NOT NULL,
    xlsx          bytea NOT NULL,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    generated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, period_start)
);
