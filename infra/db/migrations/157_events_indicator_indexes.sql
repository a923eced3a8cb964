-- Indicators and reports read events by period of disposal and by category over time
-- (bench-indicators: without these, every 按期处置率-like statement scanned the whole table).
CREATE INDEX events_disposed_idx ON events (disposed_at) WHERE disposed_at IS NOT NULL;
CREATE INDEX events_category_reported_idx ON events (category_code, reported_at);
