"""The enterprise registry synced and given quality rules: shared by the quality tests."""

from __future__ import annotations

import psycopg
import pytest

from datafoundation.quality import load_rules
from datafoundation.runner import run_sync
from simulators.departments.enterprise_registry import STATUSES, uscc_check
from tests.integration.datafoundation.conftest import SECRET_KEY, add_sync

RULES = """
correction_days: 3
rules:
  - {name: uscc_check, kind: check_digit, column: uscc, standard: uscc, hard: true}
  - {name: address_present, kind: not_null, columns: [address], hard: true}
  - {name: uscc_once, kind: unique, columns: [uscc], hard: true}
  - {name: status_known, kind: domain, column: status, values: [STATUSES]}
  - {name: capital_positive, kind: range, column: registered_capital, min: 0}
  - {name: industry_form, kind: format, column: industry_code, regex: '^[A-T][0-9]{4}$'}
  - {name: fresh, kind: freshness, max_age: 2d}
  - {name: volume, kind: row_count, tolerance: 0.5}
  - {name: columns_stable, kind: schema}
  - {name: reachable, kind: available}
""".replace("STATUSES", ", ".join(STATUSES))


def source_firms(mariadb, table: str) -> list[tuple]:
    conn = mariadb.connect()
    with conn.cursor() as cur:
        cur.execute(f"SELECT id, uscc, address, phone FROM `{table}` ORDER BY id")
        rows = cur.fetchall()
    conn.close()
    return rows


def expected_failures(rows: list[tuple]) -> dict[str, set[int]]:
    """The failing ids of each hard rule, computed from the source rows in Python."""
    bad = {r[0] for r in rows if uscc_check(r[1][:17]) != r[1][17]}
    blank = {r[0] for r in rows if not r[2].strip()}
    seen: set[str] = set()
    repeats = set()
    for fid, uscc, *_ in rows:  # ids ascending: the first of a repeated USCC is the original
        if uscc in seen:
            repeats.add(fid)
        seen.add(uscc)
    return {"uscc_check": bad, "address_present": blank, "uscc_once": repeats}


@pytest.fixture
def registry_dataset(registry_source, database_url, firms_table) -> tuple[str, int]:
    sync = add_sync(database_url, registry_source, firms_table)
    run_sync(database_url, SECRET_KEY, sync)
    dataset = f"raw_scjg_registry.{firms_table}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE dataset_fields SET mask_kind = 'phone', sensitivity = 2 "
                     "WHERE dataset_id = %s AND name = 'phone'", (dataset,))
        load_rules(conn, RULES, "test", dataset)
    return dataset, sync
