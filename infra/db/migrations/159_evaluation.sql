-- 城市综合管理服务评价 (MOHURD method, issue 17 item 3) as data: frameworks, their items with
-- weights, the event categories that measure an item, and the scores entered by hand
-- (实地考察, 问卷) per period and place. cityevents/evaluation/ computes the rest.
CREATE TABLE evaluation_frameworks (
    code             text PRIMARY KEY,
    name             text NOT NULL,
    -- the MOHURD method compares a place with its own past ("重在纵向对比，不搞横向排名")
    ranking_allowed  boolean NOT NULL DEFAULT false,
    history_periods  integer NOT NULL DEFAULT 6 CHECK (history_periods BETWEEN 1 AND 36)
);

CREATE TABLE evaluation_items (
    framework_code  text NOT NULL REFERENCES evaluation_frameworks(code),
    code            text NOT NULL,
    level1          text NOT NULL,                -- 一级指标
    name            text NOT NULL,                -- 二级指标
    weight          numeric NOT NULL CHECK (weight > 0),
    source          text NOT NULL CHECK (source IN ('events', 'manual')),
    -- an events item: score = rate_weight * on-time rate + (1 - rate_weight) * volume score
    rate_weight     numeric NOT NULL DEFAULT 0.6 CHECK (rate_weight BETWEEN 0 AND 1),
    PRIMARY KEY (framework_code, code)
);

CREATE TABLE evaluation_item_categories (
    framework_code  text NOT NULL,
    item_code       text NOT NULL,
    category_code   text NOT NULL REFERENCES event_categories(code),
    PRIMARY KEY (framework_code, item_code, category_code),
    FOREIGN KEY (framework_code, item_code) REFERENCES evaluation_items(framework_code, code)
);

CREATE TABLE evaluation_manual_scores (
    framework_code  text NOT NULL,
    item_code       text NOT NULL,
    period          date NOT NULL CHECK (extract(day FROM period) = 1),  -- the month
    area            text NOT NULL DEFAULT '',     -- '' the county, else a town or grid code
    kind            text NOT NULL CHECK (kind IN ('field', 'survey')),  -- 实地考察, 问卷
    score           numeric NOT NULL CHECK (score BETWEEN 0 AND 100),
    entered_by      text NOT NULL,
    entered_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (framework_code, item_code, period, area, kind),
    FOREIGN KEY (framework_code, item_code) REFERENCES evaluation_items(framework_code, code)
);

INSERT INTO evaluation_frameworks (code, name) VALUES ('mohurd', '城市综合管理服务评价');
INSERT INTO evaluation_items (framework_code, code, level1, name, weight, source) VALUES
    ('mohurd', 'clean', '城市形象', '干净', 20, 'events'),
    ('mohurd', 'tidy', '城市形象', '整洁', 20, 'events'),
    ('mohurd', 'order', '城市管理保底线', '有序', 20, 'events'),
    ('mohurd', 'safety', '城市管理保底线', '安全', 20, 'events'),
    ('mohurd', 'satisfaction', '群众满意度', '满意度', 20, 'manual');
-- which of the shipped categories measure which item (data: a county edits these rows)
INSERT INTO evaluation_item_categories (framework_code, item_code, category_code) VALUES
    ('mohurd', 'clean', 'E01.02'), ('mohurd', 'clean', 'E01.03'), ('mohurd', 'clean', 'F03.01'),
    ('mohurd', 'tidy', 'E01.01'), ('mohurd', 'tidy', 'E02.01'), ('mohurd', 'tidy', 'F04.01'),
    ('mohurd', 'order', 'E04.01'), ('mohurd', 'order', 'E03.01'),
    ('mohurd', 'safety', 'F01.01'), ('mohurd', 'safety', 'F02.01'),
    ('mohurd', 'safety', 'E05.01'), ('mohurd', 'safety', 'E05.02');
