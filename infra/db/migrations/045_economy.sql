-- Industrial economy (规上工业): enterprises and their monthly indicators, imported from the
-- statistics bureau's CSV or Excel files; electricity can come from the platform's meters.

CREATE TABLE enterprises (
    code        text PRIMARY KEY,               -- 统一社会信用代码 (18 characters)
    name        text NOT NULL,
    industry    text NOT NULL,                  -- 国民经济行业分类 大类, e.g. "15 酒、饮料和精制茶制造业"
    town        text NOT NULL,                  -- 乡镇或园区
    size        text NOT NULL CHECK (size IN ('large', 'medium', 'small', 'micro')),
    ownership   text NOT NULL,                  -- 国有控股, 私营, 股份制, 外商及港澳台 ...
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE import_batches (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    filename     text NOT NULL,
    rows_total   integer NOT NULL,
    rows_loaded  integer NOT NULL,
    imported_by  text NOT NULL,
    imported_at  timestamptz NOT NULL DEFAULT now()
);

-- one row per enterprise and month; amounts in 万元 (10,000 CNY), electricity in kWh
CREATE TABLE enterprise_indicators (
    enterprise_code  text NOT NULL REFERENCES enterprises(code) ON DELETE CASCADE,
    month            date NOT NULL CHECK (extract(day FROM month) = 1),
    revenue          numeric(14, 2) NOT NULL,    -- 营业收入
    value_added      numeric(14, 2) NOT NULL,    -- 工业增加值
    profit           numeric(14, 2) NOT NULL,    -- 利润总额 (negative: a loss)
    tax              numeric(14, 2) NOT NULL,    -- 税金总额
    electricity_kwh  numeric(16, 1) NOT NULL,    -- 用电量
    batch_id         bigint NOT NULL REFERENCES import_batches(id),
    imported_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (enterprise_code, month)
);
CREATE INDEX enterprise_indicators_month_idx ON enterprise_indicators (month);

-- an enterprise's power meter on the platform: its energy counter gives monthly electricity
CREATE TABLE enterprise_meters (
    enterprise_code  text PRIMARY KEY REFERENCES enterprises(code) ON DELETE CASCADE,
    device_id        text NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    point            text NOT NULL,              -- a cumulative kWh point, e.g. energy_kwh
    updated_at       timestamptz NOT NULL DEFAULT now()
);
