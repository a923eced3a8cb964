-- 三员分立 (等保 level 3, issue #19): the security administrator and the audit administrator
-- beside `admin`, the system administrator (docs/security.md). API keys never hold them:
-- a person answers for these duties.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN (
    'admin', 'ops_engineer', 'field_technician', 'operator', 'dispatcher', 'department_staff',
    'viewer', 'data_admin', 'security_admin', 'audit_admin'));
