-- The data-resource catalogue (政务信息资源目录), access requests and grants.
-- Fields follow 《政务信息资源目录编制指南(试行)》; docs/city-operations.md maps them.

CREATE TABLE resources (
    code                text PRIMARY KEY,       -- 信息资源代码: classification + '-' + sequence
    -- 信息资源分类: 类 (1 digit) . 项 (2) . 目 (3) . 细目 (free), e.g. 5.01.001
    classification      text NOT NULL
        CHECK (classification ~ '^[1-9](\.[0-9]{2}(\.[0-9]{3}(\.[0-9A-Za-z]{1,8})?)?)?$'),
    name                text NOT NULL,
    provider_id         text NOT NULL REFERENCES departments(id),   -- 信息资源提供方
    summary             text NOT NULL DEFAULT '',                   -- 信息资源摘要
    format              text NOT NULL,                              -- 信息资源格式
    items               jsonb NOT NULL DEFAULT '[]',                -- 信息项: [{name, type}]
    sharing_type        text NOT NULL
        CHECK (sharing_type IN ('unconditional', 'conditional', 'not_shared')),
    -- the conditions of conditional sharing, or the legal basis of not sharing
    sharing_conditions  text NOT NULL DEFAULT '',
    open_to_public      boolean NOT NULL DEFAULT false,
    update_cycle        text NOT NULL CHECK (update_cycle IN ('realtime', 'hourly', 'daily',
        'weekly', 'monthly', 'quarterly', 'yearly', 'irregular')),
    published_on        date NOT NULL,
    related             text[] NOT NULL DEFAULT '{}',               -- 关联资源代码
    -- where the data lives: a department's own system, or one of the platform's datasets
    source_kind         text NOT NULL DEFAULT 'department'
        CHECK (source_kind IN ('department', 'readings', 'events', 'cloud')),
    source_ref          text,                                       -- readings: the profile
    created_by          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (sharing_type = 'unconditional' OR sharing_conditions <> '')
);
CREATE UNIQUE INDEX resources_platform_source_idx ON resources (source_kind, coalesce(source_ref, ''))
    WHERE source_kind <> 'department';
CREATE INDEX resources_provider_idx ON resources (provider_id);
CREATE INDEX resources_classification_idx ON resources (classification text_pattern_ops);

CREATE TABLE access_requests (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resource_code        text NOT NULL REFERENCES resources(code),
    applicant            text NOT NULL,          -- username
    applicant_department text,
    application          text NOT NULL,          -- the calling application (its API key)
    purpose              text NOT NULL,          -- 用途
    scenario             text NOT NULL DEFAULT '',  -- 应用场景
    days                 integer NOT NULL CHECK (days BETWEEN 1 AND 730),
    state                text NOT NULL CHECK (state IN ('with_provider', 'granted', 'refused')),
    submitted_at         timestamptz NOT NULL,
    -- 符合性审查: automatic, due within 2 working days of submission
    check_due_at         timestamptz NOT NULL,
    checked_at           timestamptz NOT NULL,
    check_result         text NOT NULL,
    -- conditional sharing: the provider answers within 5 working days
    provider_due_at      timestamptz,
    decided_at           timestamptz,
    decided_by           text,
    reason               text
);
CREATE INDEX access_requests_resource_idx ON access_requests (resource_code, state);
CREATE INDEX access_requests_applicant_idx ON access_requests (applicant);

-- an approved request; api_key_id is an api_keys row (issue 5's table) that this grant
-- issued or extended; one key per applicant and application serves all its grants
CREATE TABLE grants (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resource_code    text NOT NULL REFERENCES resources(code),
    request_id       bigint NOT NULL UNIQUE REFERENCES access_requests(id),
    grantee          text NOT NULL,
    application      text NOT NULL,
    api_key_id       integer NOT NULL,
    key_issued       boolean NOT NULL,         -- a new key (true) or an extended one (false)
    key_delivered_at timestamptz,              -- when the applicant received the key, once
    granted_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    revoked_at       timestamptz,
    revoked_by       text,
    revoke_reason    text
);
CREATE INDEX grants_key_idx ON grants (api_key_id, resource_code);
CREATE INDEX grants_resource_idx ON grants (resource_code);

INSERT INTO departments (id, name) VALUES ('data-resources', '县数据资源管理局')
    ON CONFLICT (id) DO NOTHING;
