-- Audit you can prove (等保 level 3 安全审计, issue #19; docs/security.md).
--
-- 1. Append-only: the application's role loses UPDATE, DELETE and TRUNCATE on audit_log, and
--    a trigger refuses them for everyone (a superuser who disables it is what 2 detects).
-- 2. Chained by hash: each row carries `seq`, the hash of the row before (`prev_hash`) and its
--    own `hash` = SHA-256 over the previous hash and every column. Writers are serialised on
--    the one row of `audit_chain` (the head) until they commit, so the chain has no forks.
--    `cityops audit verify` recomputes it and names the first row that does not match.
-- 3. Retention: only audit_apply_retention(days >= 180) removes rows, older than the days
--    given; it records what it removed and the new anchor (the hash the first kept row
--    follows) in audit_anchors, and writes an audit row saying so.

ALTER TABLE audit_log ADD COLUMN seq bigint, ADD COLUMN prev_hash text, ADD COLUMN hash text;

CREATE TABLE audit_chain (
    id    boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq   bigint NOT NULL,
    hash  text NOT NULL
);

-- where the chain starts: the genesis, then one row per retention run
CREATE TABLE audit_anchors (
    id              integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT now(),
    first_seq       bigint NOT NULL,   -- the first row kept
    prev_hash       text NOT NULL,     -- the hash it follows
    removed_rows    bigint NOT NULL DEFAULT 0,
    removed_before  timestamptz,
    last_removed_hash text
);

CREATE FUNCTION audit_row_hash(prev text, r audit_log) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(jsonb_build_array(
        prev, r.seq, r.id,
        to_char(r.time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
        r.actor, r.actor_kind, r.role, r.action, r.target, r.source, r.outcome, r.status,
        r.detail)::text, 'UTF8')), 'hex')
$$;

-- the rows written before this migration, chained in id order
INSERT INTO audit_chain (seq, hash) VALUES (0, repeat('0', 64));
INSERT INTO audit_anchors (first_seq, prev_hash) VALUES (1, repeat('0', 64));
DO $$
DECLARE
    r audit_log;
    prev text := repeat('0', 64);
    n bigint := 0;
BEGIN
    FOR r IN SELECT * FROM audit_log ORDER BY id LOOP
        n := n + 1;
        r.seq := n;
        UPDATE audit_log SET seq = n, prev_hash = prev, hash = audit_row_hash(prev, r)
         WHERE id = r.id RETURNING hash INTO prev;
    END LOOP;
    UPDATE audit_chain SET seq = n, hash = prev;
END $$;
ALTER TABLE audit_log ALTER COLUMN seq SET NOT NULL, ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN hash SET NOT NULL;
CREATE UNIQUE INDEX audit_log_seq_idx ON audit_log (seq);

CREATE FUNCTION audit_chain_append() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head audit_chain;
BEGIN
    -- the row lock on the head is held until this transaction ends: one writer at a time
    UPDATE audit_chain SET seq = seq + 1 WHERE id RETURNING * INTO head;
    NEW.seq := head.seq;
    NEW.prev_hash := head.hash;
    NEW.hash := audit_row_hash(NEW.prev_hash, NEW);
    UPDATE audit_chain SET hash = NEW.hash WHERE id;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_chain_append BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_chain_append();

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('cityops.audit_retention', true) = 'on' THEN
        RETURN OLD;  -- audit_apply_retention, in its own transaction
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- retention: the only way rows leave; keeps at least 180 days whatever it is asked
CREATE FUNCTION audit_apply_retention(keep_days integer) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    cutoff timestamptz := now() - make_interval(days => keep_days);
    removed bigint;
    last_seq bigint;
    last_hash text;
BEGIN
    IF keep_days < 180 THEN
        RAISE EXCEPTION 'audit retention keeps at least 180 days (asked: %)', keep_days;
    END IF;
    SELECT seq, hash INTO last_seq, last_hash FROM audit_log WHERE time < cutoff
     ORDER BY seq DESC LIMIT 1;
    IF last_seq IS NULL THEN
        RETURN 0;
    END IF;
    -- rows leave in chain order: everything up to the last row older than the cutoff
    EXECUTE format('GRANT DELETE ON audit_log TO %I', current_user);
    PERFORM set_config('cityops.audit_retention', 'on', true);
    DELETE FROM audit_log WHERE seq <= last_seq;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('cityops.audit_retention', 'off', true);
    EXECUTE format('REVOKE DELETE ON audit_log FROM %I', current_user);
    INSERT INTO audit_anchors (first_seq, prev_hash, removed_rows, removed_before,
                               last_removed_hash)
    VALUES (last_seq + 1, last_hash, removed, cutoff, last_hash);
    INSERT INTO audit_log (actor, actor_kind, action, target, outcome, detail)
    VALUES ('retention', 'system', 'audit.retention', 'audit_log', 'ok',
            jsonb_build_object('removed_rows', removed, 'removed_through_seq', last_seq,
                               'older_than', cutoff, 'keep_days', keep_days));
    RETURN removed;
END $$;

REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;
DO $$ BEGIN
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM %I', current_user);
END $$;
