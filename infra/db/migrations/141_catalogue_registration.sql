-- 一本账 (issue #15): every governed dataset keeps its 政务信息资源目录 entry (source_kind
-- 'dataset', source_ref the dataset id): the system it comes from, its size and quality score as
-- of the last catalogue sync; and each entry's registration on the national 公共数据资源登记
-- platform (发改数据规〔2025〕26号: 申请 → 受理 → 审核 → 公示 → 赋码), with a slot for the
-- code the platform assigns.

ALTER TABLE resources DROP CONSTRAINT resources_source_kind_check;
ALTER TABLE resources ADD CONSTRAINT resources_source_kind_check
    CHECK (source_kind IN ('department', 'readings', 'events', 'cloud', 'dataset'));
ALTER TABLE resources
    ADD COLUMN system_id bigint REFERENCES systems(id),    -- 数据来源: the department's system
    ADD COLUMN row_count bigint,                           -- 数据规模 at the last sync
    ADD COLUMN quality_score numeric(5, 2),                -- the latest quality run's score
    ADD COLUMN quality_scored_at timestamptz;

CREATE TABLE resource_registrations (
    resource_code      text PRIMARY KEY REFERENCES resources(code),
    state              text NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'applied',
        'accepted', 'reviewed', 'publicized', 'coded', 'rejected')),
    applied_at         timestamptz,     -- 申请
    accepted_at        timestamptz,     -- 受理
    reviewed_at        timestamptz,     -- 审核 (形式审核)
    publicized_at      timestamptz,     -- 公示
    coded_at           timestamptz,     -- 赋码
    registration_code  text UNIQUE,     -- the code the national platform assigned
    note               text NOT NULL DEFAULT '',   -- the platform's remark, or why rejected
    updated_by         text,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (state <> 'coded' OR registration_code IS NOT NULL),
    CHECK (state <> 'rejected' OR note <> '')
);
