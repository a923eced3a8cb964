-- 数据治理 (issue #15), standards: the 数据元 register (DB33/T 2426: 7 basic attributes and the
-- extended ones the county uses), code tables (GB/T 2260 行政区划, GB/T 2261.1 性别, GB/T 4754
-- 行业, the county's own) and each source's value mapping onto them. Loaded from the data files
-- under governance/ by `cityops governance load`; the files are the truth, these rows a copy.

CREATE TABLE code_tables (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_]{0,62}$'),
    name        text NOT NULL,
    standard    text NOT NULL DEFAULT '',        -- e.g. 'GB/T 2261.1-2003'; '' for the county's
    version     text NOT NULL DEFAULT '',
    loaded_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE code_values (
    table_id    text NOT NULL REFERENCES code_tables(id) ON DELETE CASCADE,
    code        text NOT NULL,
    name        text NOT NULL,
    parent      text,                            -- the enclosing code (town -> county, 大类 -> 门类)
    level       smallint NOT NULL DEFAULT 1,
    PRIMARY KEY (table_id, code)
);

CREATE TABLE data_elements (
    id             text PRIMARY KEY,             -- 标识符, e.g. 'DE_USCC'
    name_zh        text NOT NULL,                -- 中文名称
    name_en        text NOT NULL,                -- 英文名称
    definition     text NOT NULL,                -- 定义
    data_type      text NOT NULL,                -- 数据类型 (字符型 C, 数值型 N, 日期型 D, ...)
    data_format    text NOT NULL,                -- 数据格式, e.g. 'c18', 'n..18,2', 'YYYY-MM-DD'
    value_domain   text NOT NULL,                -- 值域, in words
    code_table     text REFERENCES code_tables(id),   -- when the domain is a code table
    -- extended attributes
    sensitivity    smallint NOT NULL DEFAULT 0 CHECK (sensitivity BETWEEN 0 AND 3),
    mask_kind      text NOT NULL DEFAULT 'none'
        CHECK (mask_kind IN ('none', 'id_card', 'phone', 'name', 'full')),
    unit           text NOT NULL DEFAULT '',     -- 计量单位
    source_org     text NOT NULL DEFAULT '',     -- 来源机构
    synonyms       text[] NOT NULL DEFAULT '{}', -- 同义名称
    version        text NOT NULL DEFAULT '1.0',  -- 版本
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- a source's own codes onto a code table: source is a raw dataset id (or a system slug for all
-- its tables); an unmapped value is reported by name by the model that meets it, never guessed
CREATE TABLE value_maps (
    source        text NOT NULL,
    table_id      text NOT NULL,
    source_value  text NOT NULL,
    code          text NOT NULL,
    PRIMARY KEY (source, table_id, source_value),
    FOREIGN KEY (table_id, code) REFERENCES code_values(table_id, code) ON DELETE CASCADE
);
