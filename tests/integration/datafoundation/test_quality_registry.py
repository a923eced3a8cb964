"""数据质量 over the 市场监管局's enterprise registry (a real MariaDB, synced into the raw
layer): the dirty rows (bad USCC check digits, blank addresses, repeated firms) land in
quarantine with their reasons, the counts and scores match counts made here from the source
rows, a correction task opens for the department and closes once the rows are fixed."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from cityops.errors import InvalidInput
from datafoundation.quality import load_rules, run_dataset
from datafoundation.runner import run_sync
from tests.integration.datafoundation import quality_kit
from tests.integration.datafoundation.conftest import SECRET_KEY
from tests.integration.datafoundation.quality_kit import expected_failures, source_firms

registry_dataset = quality_kit.registry_dataset  # the fixture
REPO = Path(__file__).parents[3]

def _results(conn: psycopg.Connection, run_id: int) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in conn.execute(
        "SELECT rule, checked, failed, dimension, sample FROM quality.results "
        "WHERE run_id = %s", (run_id,)).fetchall()}


def test_dirty_rows_quarantined_counted_and_scored(mariadb, database_url, registry_dataset):
    dataset, _sync = registry_dataset
    source = source_firms(mariadb, dataset.split(".")[1])
    expected = expected_failures(source)
    assert all(expected.values()), "the simulator seeds every kind of dirt"
    run_id = run_dataset(database_url, dataset)
    with psycopg.connect(database_url) as conn:
        results = _results(conn, run_id)
        for rule, ids in expected.items():
            assert results[rule][:2] == (len(source), len(ids)), rule
        assert {r: v[1] for r, v in results.items() if r not in expected} == {
            "status_known": 0, "capital_positive": 0, "industry_form": 0, "fresh": 0,
            "volume": 0, "columns_stable": 0, "reachable": 0}
        held = conn.execute("SELECT rule, (row_key->>'id')::bigint, reason, row_data->>'uscc' "
                            "FROM quality.quarantine WHERE dataset_id = %s AND released_at "
                            "IS NULL", (dataset,)).fetchall()
        assert {r: {h[1] for h in held if h[0] == r} for r in expected} == expected
        assert all(h[2] for h in held)
        assert {h[2] for h in held if h[0] == "uscc_check"} == {
            "uscc: fails the 统一社会信用代码 check digit (GB 32100)"}
        # samples are masked by the field's mask kind: the phone's middle four hidden
        sample = results["uscc_check"][3]
        assert sample and all("****" in row["phone"] for row in sample)
        # the downstream view leaves out every held row
        passed = {r[0] for r in conn.execute(
            f"SELECT id FROM quality.passed(NULL::{dataset})").fetchall()}
        assert passed == {r[0] for r in source} - set().union(*expected.values())
        # scores: per dimension the mean pass rate of its rules, computed here from the counts
        n = len(source)
        accuracy = 100 * (3 - (len(expected["uscc_check"]) + len(expected["uscc_once"])) / n) / 3
        completeness = 100 * (2 - len(expected["address_present"]) / n) / 2
        scores = dict(conn.execute("SELECT dimension, score::float FROM quality.daily_scores "
                                   "WHERE dataset_id = %s", (dataset,)).fetchall())
        assert scores["准确性"] == pytest.approx(accuracy, abs=0.01)
        assert scores["完整性"] == pytest.approx(completeness, abs=0.01)
        assert scores["规范性"] == scores["时效性"] == scores["一致性"] == 100


def test_fixed_rows_close_the_task_on_the_next_run(mariadb, database_url, registry_dataset):
    dataset, sync = registry_dataset
    table = dataset.split(".")[1]
    first = run_dataset(database_url, dataset)
    with psycopg.connect(database_url) as conn:
        tasks = dict(conn.execute(
            "SELECT rule, department_id FROM quality.tasks WHERE dataset_id = %s AND "
            "state = 'open' AND due_at > opened_at", (dataset,)).fetchall())
    assert tasks == dict.fromkeys(("uscc_check", "address_present", "uscc_once"), "scjgj")
    conn = mariadb.connect()  # the department corrects its blank addresses
    with conn.cursor() as cur:
        cur.execute(f"UPDATE `{table}` SET address = '濉溪镇沱河路1号', updated_at = NOW(6) "
                    "WHERE address = ''")
    conn.commit()
    conn.close()
    run_sync(database_url, SECRET_KEY, sync)  # the sync's end runs the rules (after_load)
    with psycopg.connect(database_url) as conn:
        second, trigger = conn.execute(
            "SELECT id, trigger FROM quality.runs WHERE dataset_id = %s AND state = "
            "'succeeded' ORDER BY id DESC LIMIT 1", (dataset,)).fetchone()
        assert trigger == "sync"
        state = dict(conn.execute("SELECT rule, state FROM quality.tasks WHERE dataset_id = %s",
                                  (dataset,)).fetchall())
        assert state == {"uscc_check": "open", "address_present": "closed", "uscc_once": "open"}
        assert conn.execute("SELECT closed_run_id FROM quality.tasks WHERE dataset_id = %s "
                            "AND rule = 'address_present'", (dataset,)).fetchone()[0] == second
        released = conn.execute(
            "SELECT count(*) FILTER (WHERE released_at IS NULL), count(*) FROM "
            "quality.quarantine WHERE dataset_id = %s AND rule = 'address_present'",
            (dataset,)).fetchone()
        assert released[0] == 0 and released[1] > 0  # released, kept as history
        assert second > first


REFUSED = [
    ("{name: where_is_it, kind: not_null, columns: [no_such_column]}",
     "column no_such_column is not in"),
    ("{name: bad_regex, kind: format, column: name, regex: '(unclosed'}", "does not compile"),
    ("{name: wrong_bound, kind: range, column: registered_capital, min: lots}",
     "does not compile"),
    ("{name: no_codes, kind: domain, column: status, code_table: no_such_table}",
     "code table no_such_table does not exist"),
    ("{name: whole_hard, kind: row_count, hard: true}", "only a row rule can be hard"),
    ("{name: typo, kind: not_nul, columns: [uscc]}", "rule typo"),
]


def test_a_rule_that_does_not_compile_is_refused(database_url, registry_dataset):
    """Each refused naming dataset and rule, and nothing of the file stored (one dataset for
    all the cases: a fresh registry table per case cost a sync each)."""
    dataset, _sync = registry_dataset
    with psycopg.connect(database_url, autocommit=True) as conn:
        before = conn.execute("SELECT source FROM quality.rule_sets WHERE dataset_id = %s",
                              (dataset,)).fetchone()
        for rule, words in REFUSED:
            text = f"rules:\n  - {{name: fine, kind: not_null, columns: [uscc]}}\n  - {rule}\n"
            with pytest.raises(InvalidInput) as refused:
                load_rules(conn, text, "test", dataset)
            name = rule.split("name: ")[1].split(",")[0]
            assert f"dataset {dataset}, rule {name}" in refused.value.detail, rule
            assert words in refused.value.detail, rule
        after = conn.execute("SELECT source FROM quality.rule_sets WHERE dataset_id = %s",
                             (dataset,)).fetchone()
    assert before == after  # nothing stored


def test_the_shipped_rules_load_and_run(database_url, registry_dataset):
    dataset, _sync = registry_dataset
    text = (REPO / "governance" / "quality" / "raw_scjg_qydj.firms.yaml").read_text("utf-8")
    with psycopg.connect(database_url, autocommit=True) as conn:
        load_rules(conn, text.replace("raw_scjg_qydj.firms", dataset), "test")
    run_id = run_dataset(database_url, dataset)
    with psycopg.connect(database_url) as conn:
        failing = {r[0] for r in conn.execute(
            "SELECT rule FROM quality.results WHERE run_id = %s AND NOT passed", (run_id,))}
        reasons = {r[0] for r in conn.execute(
            "SELECT DISTINCT reason FROM quality.quarantine WHERE run_id = %s", (run_id,))}
    assert failing == {"uscc_check", "address_present", "uscc_once"}
    assert reasons == {"统一社会信用代码校验位不符 (GB 32100-2015)", "住所为空",
                       "同一统一社会信用代码重复登记"}
