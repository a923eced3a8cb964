-- 数据汇聚 (issue #14): the data bureau's role, `data_admin`, for users and API keys.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN (
    'admin', 'ops_engineer', 'field_technician', 'operator', 'dispatcher', 'department_staff',
    'viewer', 'data_admin'));
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check CHECK (role IN (
    'admin', 'ops_engineer', 'field_technician', 'operator', 'dispatcher', 'department_staff',
    'viewer', 'data_admin'));
