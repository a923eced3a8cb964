-- Who is calling is checked against the database on every request (api/identity.py), so a
-- disabled or demoted user, a changed password, or a revoked key stops working at once.

-- grows when a user's password changes or the user is disabled: a token names the version it
-- was issued under, and a token of an older version is refused
ALTER TABLE users ADD COLUMN auth_version integer NOT NULL DEFAULT 1;

CREATE FUNCTION users_bump_auth_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.password_hash IS DISTINCT FROM OLD.password_hash
       OR (NEW.disabled AND NOT OLD.disabled) THEN
        NEW.auth_version := OLD.auth_version + 1;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER users_bump_auth_version BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_bump_auth_version();

-- every API process caches callers for a second or two; this tells them all to forget at
-- once (on the live channel, which each process already LISTENs to). Any change, however
-- made (API, CLI, SQL), is covered; metering's last_used_at is not a change of rights.
CREATE FUNCTION auth_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cityops_live', '{"kind": "auth"}');
    RETURN NULL;
END $$;
CREATE TRIGGER users_auth_changed AFTER UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION auth_changed();
CREATE TRIGGER api_keys_auth_changed AFTER UPDATE ON api_keys
    FOR EACH ROW WHEN ((OLD.role, OLD.routes, OLD.departments, OLD.expires_at, OLD.revoked_at)
                       IS DISTINCT FROM
                       (NEW.role, NEW.routes, NEW.departments, NEW.expires_at, NEW.revoked_at))
    EXECUTE FUNCTION auth_changed();
CREATE TRIGGER api_keys_auth_deleted AFTER DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION auth_changed();

-- failed authentications counted per subject ('account:<name>', 'key:<prefix>',
-- 'address:<ip>') in a fixed window, shared by every API process (api/throttle.py). A lockout
-- that only a security admin lifts (issue #19) can be a column here.
CREATE TABLE auth_failures (
    subject         text PRIMARY KEY,
    failures        integer NOT NULL,
    window_start    timestamptz NOT NULL,
    last_failed_at  timestamptz NOT NULL
);
