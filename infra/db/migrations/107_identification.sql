-- 身份鉴别 (等保 level 3, issue #19): password age and history, lockouts that last until a
-- security administrator lifts them or their time ends, and a TOTP second factor.

ALTER TABLE users ADD COLUMN password_changed_at timestamptz NOT NULL DEFAULT now();

-- the hashes of a user's previous passwords (argon2): the last N may not be chosen again
CREATE TABLE password_history (
    username       text NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    password_hash  text NOT NULL,
    set_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX password_history_user_idx ON password_history (username, set_at DESC);

-- a subject over its limit is locked until this time (api/throttle.py)
ALTER TABLE auth_failures ADD COLUMN locked_until timestamptz;

-- a user's TOTP secret, encrypted (Fernet, key derived from the JWT secret); confirmed once a
-- first code was verified; recovery codes kept as SHA-256, each used once
CREATE TABLE user_totp (
    username        text PRIMARY KEY REFERENCES users (username) ON DELETE CASCADE,
    secret          bytea NOT NULL,
    confirmed_at    timestamptz,
    recovery_hashes text[] NOT NULL DEFAULT '{}',
    last_step       bigint NOT NULL DEFAULT 0,  -- a code is accepted once (no replay)
    created_at      timestamptz NOT NULL DEFAULT now()
);
