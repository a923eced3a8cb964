-- City events (案件) from report to closure: the GB/T 30428 digitised urban-management loop.
-- docs/city-operations.md explains states, roles per step, clocks and evaluation formulas.

-- 大类/小类 of facilities (部件) and incidents (事件). Codes are local: kind letter (F 部件,
-- E 事件), class, subclass; the standard's own code layout was not available to copy.
CREATE TABLE event_categories (
    code           text PRIMARY KEY CHECK (code ~ '^[A-Z][0-9A-Z.]{1,31}$'),
    kind           text NOT NULL CHECK (kind IN ('facility', 'incident')),
    major          text NOT NULL,                -- 大类
    minor          text NOT NULL,                -- 小类
    department_id  text REFERENCES departments(id),  -- 责任单位 suggested at dispatch
    register_rule  text NOT NULL DEFAULT '',     -- 立案标准
    close_rule     text NOT NULL DEFAULT ''      -- 结案标准
);

-- time limit per category x urgency x step; category '*' is the default for every category
CREATE TABLE event_time_limits (
    category_code  text NOT NULL,
    urgency        text NOT NULL CHECK (urgency IN ('normal', 'urgent')),
    step           text NOT NULL CHECK (step IN ('accept', 'verify', 'dispatch', 'dispose',
                                                 'check', 'total')),
    amount         numeric NOT NULL CHECK (amount > 0),
    unit           text NOT NULL CHECK (unit IN ('work_hours', 'work_days', 'hours')),
    PRIMARY KEY (category_code, urgency, step)
);

CREATE TABLE events (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel            text NOT NULL CHECK (channel IN ('sensor', 'hotline', 'inspector',
                                                        'citizen', 'system')),
    reporter           text NOT NULL,
    category_code      text NOT NULL REFERENCES event_categories(code),
    urgency            text NOT NULL CHECK (urgency IN ('normal', 'urgent')),
    description        text NOT NULL,
    address            text NOT NULL DEFAULT '',
    grid               text NOT NULL DEFAULT '',     -- 单元网格
    latitude           double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude          double precision CHECK (longitude BETWEEN -180 AND 180),
    state              text NOT NULL DEFAULT 'reported',
    department_id      text REFERENCES departments(id),
    supervised         boolean NOT NULL DEFAULT false,
    alarm_group        text,                         -- one open event per alarm group
    external_ref       text,                         -- e.g. the 12345 ticket number
    reported_at        timestamptz NOT NULL,
    -- the clock of the current step and of the whole event (services/events/clock.py);
    -- *_limit_s is in working seconds for work units, real seconds for 'hours'
    step               text,
    step_unit          text,
    step_limit_s       double precision,
    step_started_at    timestamptz,
    step_deadline_at   timestamptz,
    total_unit         text,
    total_limit_s      double precision,
    total_deadline_at  timestamptz,
    -- set while suspended (挂账): on resume both deadlines move by the working time passed
    suspended_at       timestamptz,
    disposed_at        timestamptz,
    disposed_on_time   boolean,
    closed_at          timestamptz,
    closed_on_time     boolean,
    rework_count       integer NOT NULL DEFAULT 0,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_state_idx ON events (state);
CREATE INDEX events_department_idx ON events (department_id, state);
CREATE INDEX events_reported_idx ON events (reported_at DESC);
CREATE UNIQUE INDEX events_open_alarm_group_idx ON events (alarm_group)
    WHERE alarm_group IS NOT NULL AND state NOT IN ('closed', 'cancelled');

-- every transition: who, when, the note, and (in objects) its attachments
CREATE TABLE event_transitions (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       bigint NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    action         text NOT NULL,
    from_state     text,
    to_state       text NOT NULL,
    actor          text NOT NULL,
    actor_role     text NOT NULL,
    at             timestamptz NOT NULL,
    note           text NOT NULL DEFAULT '',
    department_id  text,            -- the department concerned: dispatched to, returning, ...
    on_time        boolean,         -- whether the step that ended met its limit
    detail         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX event_transitions_event_idx ON event_transitions (event_id, id);
CREATE INDEX event_transitions_action_idx ON event_transitions (action, at);

-- side branches needing approval: 作废 cancel, 挂账 suspend, 延期 extend, 回退 return
CREATE TABLE event_requests (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id         bigint NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind IN ('cancel', 'suspend', 'extend', 'return')),
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved',
                                                                      'refused')),
    requested_by     text NOT NULL,
    requested_role   text NOT NULL,
    requested_at     timestamptz NOT NULL,
    note             text NOT NULL,
    amount           numeric,       -- extension size
    unit             text CHECK (unit IN ('work_hours', 'work_days', 'hours')),
    decided_by       text,
    decided_at       timestamptz,
    decision_note    text
);
CREATE UNIQUE INDEX event_requests_one_pending ON event_requests (event_id)
    WHERE state = 'pending';

INSERT INTO event_categories (code, kind, major, minor, register_rule, close_rule) VALUES
    ('F01.01', 'facility', '公用设施', '井盖', '井盖缺失、破损、移位', '井盖完好归位'),
    ('F01.02', 'facility', '公用设施', '路灯', '路灯不亮、灯杆倾斜破损', '路灯恢复正常'),
    ('F01.03', 'facility', '公用设施', '供电设施', '配电箱、变压器异常或告警', '设备恢复正常'),
    ('F02.01', 'facility', '道路交通设施', '护栏', '护栏缺失、破损', '护栏修复'),
    ('F03.01', 'facility', '市容环境设施', '公厕', '公厕设施损坏、不洁', '恢复使用'),
    ('F04.01', 'facility', '园林绿化设施', '行道树', '行道树倒伏、死亡', '扶正或补植'),
    ('E01.01', 'incident', '市容环境', '私搭乱建', '存在违法搭建', '搭建物拆除'),
    ('E01.02', 'incident', '市容环境', '暴露垃圾', '垃圾暴露面积大于0.5平方米', '垃圾清除'),
    ('E01.03', 'incident', '市容环境', '道路不洁', '路面明显污染', '路面清洁'),
    ('E02.01', 'incident', '宣传广告', '非法小广告', '张贴、涂写小广告', '清除'),
    ('E03.01', 'incident', '施工管理', '施工扰民', '夜间施工噪声', '停止违规施工'),
    ('E04.01', 'incident', '街面秩序', '占道经营', '占用道路经营', '恢复通行'),
    ('E05.01', 'incident', '突发事件', '道路积水', '路面积水影响通行', '积水排除'),
    ('E05.02', 'incident', '突发事件', '路面塌陷', '路面塌陷或空洞', '修复并恢复通行'),
    ('E06.01', 'incident', '其他事件', '物联感知告警', '传感器规则告警', '告警原因消除'),
    ('E06.99', 'incident', '其他事件', '其他', '其他需处置的问题', '问题解决');

-- defaults for every category, then the local tables' examples (A5 of the reference note)
INSERT INTO event_time_limits (category_code, urgency, step, amount, unit) VALUES
    ('*', 'normal', 'accept',   2, 'work_hours'),
    ('*', 'normal', 'verify',   4, 'work_hours'),
    ('*', 'normal', 'dispatch', 2, 'work_hours'),
    ('*', 'normal', 'dispose',  3, 'work_days'),
    ('*', 'normal', 'check',    4, 'work_hours'),
    ('*', 'normal', 'total',    5, 'work_days'),
    ('*', 'urgent', 'accept',   0.5, 'hours'),
    ('*', 'urgent', 'verify',   1, 'hours'),
    ('*', 'urgent', 'dispatch', 0.5, 'hours'),
    ('*', 'urgent', 'dispose',  4, 'hours'),
    ('*', 'urgent', 'check',    2, 'hours'),
    ('*', 'urgent', 'total',    12, 'hours'),
    ('E01.01', 'normal', 'dispose', 20, 'work_days'),
    ('E01.01', 'normal', 'total',   25, 'work_days'),
    ('E01.02', 'normal', 'dispose', 4, 'work_hours'),
    ('E01.03', 'normal', 'dispose', 2, 'work_hours'),
    ('E05.01', 'normal', 'dispose', 4, 'work_hours'),
    ('F01.01', 'normal', 'dispose', 1, 'work_days');
