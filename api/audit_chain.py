"""Proving the audit log (migration 108, docs/security.md): verify the hash chain, apply the
retention, export rows. The hash is computed by the database (audit_row_hash) both when a
row is written and here, so there is one definition of it.

Verification walks the rows in chain order (`seq`) from the latest anchor and reports the
first that breaks: a row whose columns no longer give its hash (edited), a row whose
`prev_hash` is not the hash before it or a gap in `seq` (removed or inserted by hand), or a
chain that ends before the head the database recorded (the newest rows removed).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

BATCH = 5000


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int
    detail: str
    first_broken_seq: int | None = None
    first_broken_id: int | None = None


def _rows(conn: psycopg.Connection, first_seq: int):
    # a server-side cursor: a year of audit rows is not held in memory at once
    with conn.cursor(name="audit_verify") as cur:
        cur.itersize = BATCH
        cur.execute("SELECT seq, id, prev_hash, hash, audit_row_hash(prev_hash, a)"
                    " FROM audit_log a WHERE seq >= %s ORDER BY seq", (first_seq,))
        yield from cur


def verify(database_url: str) -> Verdict:
    with psycopg.connect(database_url) as conn:
        # one snapshot for the head and the rows: writers carry on meanwhile
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        anchor = conn.execute("SELECT first_seq, prev_hash FROM audit_anchors"
                              " ORDER BY id DESC LIMIT 1").fetchone()
        head = conn.execute("SELECT seq, hash FROM audit_chain").fetchone()
        if anchor is None or head is None:
            return Verdict(False, 0, "no audit chain: run `cityops db migrate`")
        expected_seq, expected_prev = anchor
        checked = 0
        for seq, row_id, prev_hash, row_hash, recomputed in _rows(conn, expected_seq):
            problem = ("a row is missing before it (seq jumps from"
                       f" {expected_seq - 1} to {seq})" if seq != expected_seq
                       else "its prev_hash is not the hash of the row before"
                       if prev_hash != expected_prev
                       else "its columns no longer give its hash (edited)"
                       if row_hash != recomputed else None)
            if problem is not None:
                return Verdict(False, checked, f"audit row id {row_id} (seq {seq}): {problem}",
                               seq, row_id)
            checked += 1
            expected_seq, expected_prev = seq + 1, row_hash
        if (expected_seq - 1, expected_prev) != tuple(head):
            return Verdict(False, checked, f"the chain ends at seq {expected_seq - 1} but the"
                           f" head recorded seq {head[0]}: rows were removed from its end",
                           expected_seq)
        return Verdict(True, checked, f"{checked} rows verified from seq {anchor[0]} to"
                                      f" {expected_seq - 1}")


def apply_retention(database_url: str, keep_days: int) -> int:
    """Remove rows older than `keep_days` (at least 180; the database refuses less)."""
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT audit_apply_retention(%s)", (keep_days,)).fetchone()[0]
