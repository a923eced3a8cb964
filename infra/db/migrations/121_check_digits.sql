-- 数据治理 (issue #15), quality: the check digits of the two national identifiers, as SQL so that a
-- quality rule, a standard-layer model and a hand-written query all test them in the database, in
-- the same scan as the other rules. Both are plain SQL expressions (no FROM, no loop) so the planner
-- inlines them into the calling query instead of calling a function per row.
--
-- A malformed value is simply not valid (false), never an error: a rule over a dirty raw table must
-- not abort on the first odd character. NULL in, NULL out (a missing value is the not-null rule's).

-- 统一社会信用代码, GB 32100-2015: 18 characters from a 31-character alphabet (no I, O, S, V, Z); the
-- 18th is 31 - (sum of the first 17 alphabet positions weighted 3^i mod 31) mod 31, as a character.
CREATE OR REPLACE FUNCTION uscc_valid(c text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT c ~ '^[0-9A-HJ-NPQRTUWXY]{18}$' AND substr('0123456789ABCDEFGHJKLMNPQRTUWXY', (31 - (
        (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(c, 1, 1)) - 1) * 1 +
        (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(c, 2, 1)) - 1) * 3 +
        (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(c, 3, 1)) - 1) * 9 +
        (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(c, 4, 1)) - 1) * 27 +
        (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(c, 5, 1)) - 1) * 19 +
        (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(c, 6, 1)) - 1) * 26 +
        (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(c, 7, 1)) - 1) * 16 +
        (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(c, 8, 1)) - 1) * 17 +
        (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(c, 9, 1)) - 1) * 20 +
        (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(c, 10, 1)) - 1) * 29 +
        (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(c, 11, 1)) - 1) * 25 +
        (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(c, 12, 1)) - 1) * 13 +
        (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(c, 13, 1)) - 1) * 8 +
        (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(c, 14, 1)) - 1) * 24 +
        (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(c, 15, 1)) - 1) * 10 +
        (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(c, 16, 1)) - 1) * 30 +
        (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(c, 17, 1)) - 1) * 28
    ) % 31) % 31 + 1, 1) = substr(c, 18, 1)
$$;
COMMENT ON FUNCTION uscc_valid(text) IS
    '统一社会信用代码 format and check digit (GB 32100-2015); NULL for NULL';

-- 公民身份号码, GB 11643-1999: 17 digits and a check character; weights 2^(17-i) mod 11, the check is
-- '10X98765432' at (weighted sum mod 11). Only the check digit and the shape are tested here; the
-- date of birth and the 行政区划 code are code-table rules.
CREATE OR REPLACE FUNCTION id_card_valid(c text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT c ~ '^[0-9]{17}[0-9X]$' AND substr('10X98765432', (
        (strpos('0123456789', substr(c, 1, 1)) - 1) * 7 +
        (strpos('0123456789', substr(c, 2, 1)) - 1) * 9 +
        (strpos('0123456789', substr(c, 3, 1)) - 1) * 10 +
        (strpos('0123456789', substr(c, 4, 1)) - 1) * 5 +
        (strpos('0123456789', substr(c, 5, 1)) - 1) * 8 +
        (strpos('0123456789', substr(c, 6, 1)) - 1) * 4 +
        (strpos('0123456789', substr(c, 7, 1)) - 1) * 2 +
        (strpos('0123456789', substr(c, 8, 1)) - 1) * 1 +
        (strpos('0123456789', substr(c, 9, 1)) - 1) * 6 +
        (strpos('0123456789', substr(c, 10, 1)) - 1) * 3 +
        (strpos('0123456789', substr(c, 11, 1)) - 1) * 7 +
        (strpos('0123456789', substr(c, 12, 1)) - 1) * 9 +
        (strpos('0123456789', substr(c, 13, 1)) - 1) * 10 +
        (strpos('0123456789', substr(c, 14, 1)) - 1) * 5 +
        (strpos('0123456789', substr(c, 15, 1)) - 1) * 8 +
        (strpos('0123456789', substr(c, 16, 1)) - 1) * 4 +
        (strpos('0123456789', substr(c, 17, 1)) - 1) * 2
    ) % 11 + 1, 1) = substr(c, 18, 1)
$$;
COMMENT ON FUNCTION id_card_valid(text) IS
    '公民身份号码 format and check digit (GB 11643-1999); NULL for NULL';
