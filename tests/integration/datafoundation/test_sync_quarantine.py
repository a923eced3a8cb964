"""Bad rows never fail a whole run: a real MariaDB table (composite key, no primary key in the
source, zero and impossible dates allowed) with every kind of bad row; the good rows load, the
bad ones are set aside with the source, table, row and a reason naming column and value."""

from __future__ import annotations

import psycopg
import pytest

from datafoundation.runner import run_sync
from tests.integration.datafoundation.conftest import SECRET_KEY, add_sync

T1, T2, T3, T4 = ("2025-01-01 00:00:01", "2025-01-01 00:00:02", "2025-01-01 00:00:03",
                  "2025-01-01 00:00:04")
ROWS = [  # region, no, issued, holder, updated_at
    (1, 1, "2024-01-01", "甲", T1),
    (1, 2, "0000-00-00", "乙", T1),       # MariaDB zero date
    (1, 3, "2024-02-30", "丙", T1),       # a date PostgreSQL refuses
    (None, 4, "2024-01-04", "丁", T1),    # NULL key part
    (1, 5, "2024-01-05", "戊", T2),       # the same key twice at the same position
    (1, 5, "2024-01-05", "戊二", T2),
    (1, 6, "2024-01-06", "己\x00", T2),   # NUL, which PostgreSQL text cannot hold
    (1, 7, "2024-01-07", "庚", T2),       # the same key again in a later batch
    (2, 1, "2024-01-08", "辛", None),     # NULL cursor
    (2, 2, "2024-01-09", "壬", T3),
    (1, 7, "2024-01-10", "庚二", T4),
    (2, 3, "2024-01-11", "癸", T4),
]
GOOD = {(1, 1), (1, 5), (1, 7), (2, 2), (2, 3)}


@pytest.fixture(scope="module")
def permits(mariadb) -> str:
    conn = mariadb.connect()
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
        for name in ("permits", "permits_b"):  # the second for the full-mode test
            cur.execute(f"CREATE TABLE {name} (region INT NULL, no INT NOT NULL, issued DATE "
                        "NULL, holder VARCHAR(20), updated_at DATETIME NULL, KEY (region, no))")
            cur.executemany(f"INSERT INTO {name} VALUES (%s, %s, %s, %s, %s)", ROWS)
    conn.commit()
    conn.close()
    return "permits"


def _quarantined(database_url: str, run: int) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT source, source_table, row->>'region', row->>'no', reason "
                            "FROM sync_quarantine WHERE run_id = %s ORDER BY id",
                            (run,)).fetchall()


def _loaded(database_url: str, target: str) -> dict[tuple, str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(f"SELECT region, no, holder FROM raw_scjg_registry.{target}")
        return {(r[0], r[1]): r[2] for r in rows}


def _counts(database_url: str, run: int) -> tuple:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT state, rows_read, rows_written, rows_quarantined "
                            "FROM sync_runs WHERE id = %s", (run,)).fetchone()


def test_bad_rows_are_set_aside_and_the_rest_loads(permits, mariadb, registry_source,
                                                   database_url):
    table = permits
    sync = add_sync(database_url, registry_source, table, key=["region", "no"], batch_rows=2)
    run = run_sync(database_url, SECRET_KEY, sync)
    loaded = _loaded(database_url, table)
    assert set(loaded) == GOOD and loaded[(1, 5)] in ("戊", "戊二")
    assert loaded[(1, 7)] == "庚"  # the first copy stays, the later one is set aside
    aside = _quarantined(database_url, run)
    reasons = {(r[2], r[3]): r[4] for r in aside}
    assert all(r[:2] == ("registry-db", "permits") for r in aside)
    assert 'column issued' in reasons[("1", "2")] and '"0000-00-00"' in reasons[("1", "2")]
    assert 'column issued' in reasons[("1", "3")] and '"2024-02-30"' in reasons[("1", "3")]
    assert reasons[(None, "4")] == "primary key column region is NULL"
    assert reasons[("1", "5")].startswith("key region='1', no='5' appears twice in one "
                                          "batch")
    assert "NUL character" in reasons[("1", "6")]
    # a first load goes in without an index; the key, built after, finds the later copy
    assert reasons[("1", "7")] == ("key region=1, no=7 is held by more than one row in the "
                                   "source: the later copy is set aside")
    assert reasons[("2", "1")].startswith("cursor column updated_at is NULL")
    assert _counts(database_url, run) == ("succeeded", len(ROWS), len(GOOD), 7)

    # the next run reads nothing new; the rows a keyset read never reaches (NULL key part,
    # NULL cursor) are set aside again, for this run: the data bureau sees them until fixed
    again = run_sync(database_url, SECRET_KEY, sync)
    assert [r[2:4] for r in _quarantined(database_url, again)] == [(None, "4"), ("2", "1")]
    assert _counts(database_url, again) == ("succeeded", 2, 0, 2)

    # once keyed, a key met again later in the same run is asked about at the source
    conn = permits_conn(mariadb)
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO permits VALUES (%s, %s, %s, %s, %s)", [
            (1, 8, "2024-02-01", "子", "2025-01-01 00:00:05"),
            (3, 1, "2024-02-02", "丑", "2025-01-01 00:00:05"),
            (1, 8, "2024-02-03", "子二", "2025-01-01 00:00:06")])
    conn.commit()
    conn.close()
    third = run_sync(database_url, SECRET_KEY, sync)
    reasons = {(r[2], r[3]): r[4] for r in _quarantined(database_url, third)}
    assert reasons[("1", "8")].startswith("key region=1, no=8 was already loaded from an "
                                          "earlier batch of this run")
    assert _loaded(database_url, table)[(1, 8)] == "子"


def permits_conn(mariadb):
    return mariadb.connect()


def test_full_mode_duplicates_across_batches(permits, registry_source, database_url):
    sync = add_sync(database_url, registry_source, "permits_b", mode="full", key=["region", "no"],
                    batch_rows=2, target="permits_full")
    run = run_sync(database_url, SECRET_KEY, sync)
    loaded = _loaded(database_url, "permits_full")
    assert set(loaded) == GOOD | {(2, 1)}  # a full load has no cursor to be NULL
    reasons = {(r[2], r[3]): r[4] for r in _quarantined(database_url, run)}
    # (1, 7) held twice: the copy in a later batch than the first is named, never skipped
    assert reasons[("1", "7")].startswith("key region='1', no='7' appears twice in one batch")
    assert set(reasons) == {("1", "2"), ("1", "3"), (None, "4"), ("1", "5"), ("1", "6"),
                            ("1", "7")}
    assert _counts(database_url, run) == ("succeeded", len(ROWS), len(GOOD) + 1, 6)
