-- 城管通 (issue 18 item 4): the 监督员 (grid inspector) as a role of their own. They report
-- what they find on their rounds from a phone, follow their reports, and check a closure on
-- site when the 监督中心 sends the case to 核查 (POST /v1/events/{id}/site-check).
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN (
    'admin', 'ops_engineer', 'field_technician', 'operator', 'dispatcher', 'department_staff',
    'viewer', 'data_admin', 'security_admin', 'audit_admin', 'inspector'));
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check CHECK (role IN (
    'admin', 'ops_engineer', 'field_technician', 'operator', 'dispatcher', 'department_staff',
    'viewer', 'data_admin', 'inspector'));

-- a report sent again after a lost answer (the phone's retry) names the same key: one event
CREATE TABLE event_report_keys (
    reporter text NOT NULL,
    key text NOT NULL CHECK (length(key) BETWEEN 8 AND 64),
    event_id bigint NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (reporter, key)
);
