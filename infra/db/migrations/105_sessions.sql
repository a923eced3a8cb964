-- Sessions that fit the work (issue #18 item 5, issue #19): a person's login is a session with
-- a short access token (a JWT naming the session) and a refresh token rotated on each use; a
-- wall or big screen is a registered display with a long-lived read-only token (api/sessions.py).

-- one login of one person; revoked at logout, at a password change or when the user is
-- disabled (the trigger below), when idle too long, or when a used refresh token comes back
CREATE TABLE auth_sessions (
    id              uuid PRIMARY KEY,
    username        text NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    auth_version    integer NOT NULL,
    source          text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_active_at  timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoked_reason  text
);
CREATE INDEX auth_sessions_user_idx ON auth_sessions (username) WHERE revoked_at IS NULL;

-- the family of refresh tokens of a session: only SHA-256 of each is kept (32 random bytes);
-- `used_at` set when it was exchanged: presenting it again revokes the session
CREATE TABLE refresh_tokens (
    token_hash  text PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES auth_sessions (id) ON DELETE CASCADE,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- a wall or big screen: its token reads (GET) as a viewer, from its addresses only if given
CREATE TABLE displays (
    id            text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    name          text NOT NULL,
    token_hash    text NOT NULL UNIQUE,
    prefix        text NOT NULL,
    addresses     cidr[],
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    last_seen_at  timestamptz
);

-- a new password or a disabled login ends every session of the user (their access tokens are
-- refused already by the version in them: migration 062)
CREATE FUNCTION users_end_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE auth_sessions SET revoked_at = now(),
           revoked_reason = 'password changed or login disabled'
     WHERE username = NEW.username AND revoked_at IS NULL;
    RETURN NULL;
END $$;
CREATE TRIGGER users_end_sessions AFTER UPDATE ON users
    FOR EACH ROW WHEN (NEW.auth_version IS DISTINCT FROM OLD.auth_version)
    EXECUTE FUNCTION users_end_sessions();

-- every API process forgets its cached callers when a session or display is revoked
CREATE TRIGGER auth_sessions_revoked AFTER UPDATE ON auth_sessions
    FOR EACH ROW WHEN (NEW.revoked_at IS DISTINCT FROM OLD.revoked_at)
    EXECUTE FUNCTION auth_changed();
CREATE TRIGGER displays_changed AFTER UPDATE ON displays
    FOR EACH ROW WHEN ((OLD.revoked_at, OLD.addresses, OLD.expires_at)
                       IS DISTINCT FROM (NEW.revoked_at, NEW.addresses, NEW.expires_at))
    EXECUTE FUNCTION auth_changed();
