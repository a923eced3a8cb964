-- Industrial economy in depth (issue 17 item 4): the 规上 threshold and each year's set of
-- 规上 firms as data, the 用电看经济 warning colours, and the 亩均 land, weights and bases.

-- 规模以上: annual revenue (营业收入, 万元) at or above revenue_min from from_year on
CREATE TABLE economy_scale_rules (
    from_year    integer PRIMARY KEY,
    revenue_min  numeric NOT NULL CHECK (revenue_min > 0)
);
INSERT INTO economy_scale_rules VALUES (2011, 2000);

-- the firms counted as 规上 in a year (derived from the year before's revenue, or loaded)
CREATE TABLE economy_scale_firms (
    year             integer NOT NULL,
    enterprise_code  text NOT NULL REFERENCES enterprises(code) ON DELETE CASCADE,
    PRIMARY KEY (year, enterprise_code)
);

-- 用电看经济: a firm's gap between electricity growth and value-added growth (percentage
-- points, absolute) at or above min_gap_pp takes the colour (the highest that applies)
CREATE TABLE economy_power_colours (
    colour      text PRIMARY KEY CHECK (colour IN ('green', 'blue', 'orange', 'red')),
    min_gap_pp  numeric NOT NULL UNIQUE CHECK (min_gap_pp >= 0)
);
INSERT INTO economy_power_colours VALUES ('green', 0), ('blue', 10), ('orange', 20), ('red', 30);

-- 亩均: each firm's land (亩) per year, and per year the weight and base value (万元 per 亩)
-- of each measure; a firm's score = sum of weight * (measure per mu / base) * 100
CREATE TABLE economy_land (
    year             integer NOT NULL,
    enterprise_code  text NOT NULL REFERENCES enterprises(code) ON DELETE CASCADE,
    mu               numeric NOT NULL CHECK (mu > 0),
    PRIMARY KEY (year, enterprise_code)
);
CREATE TABLE economy_mu_weights (
    year     integer NOT NULL,
    measure  text NOT NULL CHECK (measure IN ('tax', 'value_added', 'revenue', 'profit')),
    weight   numeric NOT NULL CHECK (weight > 0),
    base     numeric NOT NULL CHECK (base > 0),
    PRIMARY KEY (year, measure)
);
