-- Issue #22 item 11: a gateway whose local queue fills up drops its oldest readings; that
-- must raise an alarm, not only bump a counter nobody watches.
--
-- Platform rules are conditions the platform detects itself, not rules evaluated on readings:
-- stored disabled, because the rules engine loads only enabled rules (their body is not a
-- readings rule). The alarm they raise has the usual lifecycle (ingestion/alarms.py).
ALTER TABLE rules DROP CONSTRAINT rules_kind_check;
ALTER TABLE rules ADD CONSTRAINT rules_kind_check
    CHECK (kind IN ('threshold', 'rate_of_change', 'offline', 'anomaly', 'platform'));

INSERT INTO rules (id, kind, severity, title, body, enabled)
VALUES ('platform.gateway_dropped_readings', 'platform', 'major',
        'Gateway dropped readings: its local queue was full',
        '{"kind": "platform", "source": "gateway status counters.dropped_readings"}', false)
ON CONFLICT (id) DO NOTHING;

-- the agent's drop counter as last seen in an online status (a will carries the counter of
-- connect time, so the baseline is kept apart from last_status)
ALTER TABLE gateways ADD COLUMN dropped_readings bigint NOT NULL DEFAULT 0;
