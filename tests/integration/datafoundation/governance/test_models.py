"""Layer models over the enterprise registry: raw → std → topic, rows failing a hard rule or
a code mapping rejected with the reason, counts checked against the source independently; a
failed model leaves its target and everything downstream as they were."""

from __future__ import annotations

import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal

import psycopg
import pytest

from cityops.errors import ModelFailed
from datafoundation.governance import run as runner
from datafoundation.quality import load_rules, run_on
from datafoundation.runner import run_sync
from simulators.departments import enterprise_registry
from tests.conftest import REPO, settings_env
from tests.integration.datafoundation.conftest import SECRET_KEY


def _source(mariadb, table: str) -> list[tuple]:
    conn = mariadb.connect()
    with conn.cursor() as cur:
        cur.execute(f"SELECT id, uscc, address, status, registered_capital, updated_at, "
                    f"industry_code "
                    f"FROM `{table}` ORDER BY id")
        rows = cur.fetchall()
    conn.close()
    return rows


def _expected(rows: list[tuple]) -> tuple[dict[str, tuple], int]:
    """What the standard layer should hold, computed here from the source rows: valid check
    digit, an address, one row per USCC (the latest update; the lower id on a tie is not
    assumed: a tie keeps either), the status mapped by hand."""
    status = {"存续": "1", "在业": "1", "吊销": "2", "注销": "3", "迁出": "4"}
    kept: dict[str, tuple] = {}
    for _id, uscc, address, state, capital, updated, industry in rows:
        if enterprise_registry.uscc_check(uscc[:17]) != uscc[17] or not address.strip():
            continue
        if uscc not in kept or updated > kept[uscc][2]:
            kept[uscc] = (status[state], capital / 10000, updated, industry[0])
    return kept, len(rows)


def test_registry_to_topic(database_url, mariadb, firms_table, governed):
    folder, suffix, _sync, _raw = governed
    outcome = runner.run(psycopg.connect(database_url, autocommit=True), None, folder)
    assert list(outcome) == [f"std_enterprises_{suffix}", f"topic_enterprises_{suffix}",
                             f"topic_industrial_{suffix}"]
    expected, read = _expected(_source(mariadb, firms_table))
    with psycopg.connect(database_url) as conn:
        got = {r[0]: r[1:] for r in conn.execute(
            f"SELECT uscc, status_code, registered_capital FROM std.enterprises_{suffix}")}
        assert set(got) == set(expected)
        for uscc, (status, capital, _u, _i) in expected.items():
            wan = Decimal(capital).quantize(Decimal("0.0001"), ROUND_HALF_UP)  # as numeric
            assert got[uscc] == (status, wan)
        reasons = dict(conn.execute(
            "SELECT reason, count(*) FROM layer_model_rejects j JOIN layer_model_runs r ON "
            "r.id = j.run_id WHERE r.model = %s GROUP BY reason", (f"std_enterprises_{suffix}",)))
        assert reasons.get("统一社会信用代码校验位不符 (GB 32100-2015)", 0) > 0
        assert reasons.get("住所为空", 0) > 0
        assert sum(reasons.values()) == read - len(expected)  # rejected, never vanished
        assert any(r.startswith("duplicate of key uscc = ") for r in reasons)
        run = conn.execute("SELECT state, rows_in, rows_out, rows_rejected, version FROM "
                           "layer_model_runs WHERE model = %s", (f"std_enterprises_{suffix}",)
                           ).fetchone()
        assert run == ("succeeded", read, len(expected), read - len(expected), 1)
        assert conn.execute(f"SELECT count(*), count(*) FILTER (WHERE industry_division_name "
                            f"IS NULL) FROM topic.enterprises_{suffix}").fetchone() == (
            len(expected), 0)
        industrial = {u for u, (s, _c, _u, section) in expected.items()
                      if s == "1" and section in "BCD"}
        assert {r[0] for r in conn.execute(f"SELECT uscc FROM topic.industrial_{suffix}")} == \
            industrial and industrial
        # the topic dataset is registered with its elements; masking follows the element
        fields = dict((r[0], r[1:]) for r in conn.execute(
            "SELECT name, element_id, sensitivity, mask_kind FROM dataset_fields WHERE "
            "dataset_id = %s", (f"topic.enterprises_{suffix}",)))
        assert fields["legal_person"] == ("DE00008", 2, "name")
        assert fields["phone"] == ("DE00009", 2, "phone")
        assert conn.execute("SELECT layer, primary_key FROM datasets WHERE id = %s",
                            (f"topic.enterprises_{suffix}",)).fetchone() == ("topic", ["uscc"])


def test_unmapped_code_is_named_not_guessed(database_url, mariadb, firms_table, governed):
    folder, suffix, sync, _raw = governed
    # a firm that passes every hard rule, so the missing mapping is its only fault
    firm = next(r[0] for r in _source(mariadb, firms_table)
                if enterprise_registry.uscc_check(r[1][:17]) == r[1][17] and r[2].strip())
    conn = mariadb.connect()
    with conn.cursor() as cur:
        cur.execute(f"UPDATE `{firms_table}` SET status = '歇业' WHERE id = %s", (firm,))
    conn.commit()
    conn.close()
    run_sync(database_url, SECRET_KEY, sync)
    with psycopg.connect(database_url, autocommit=True) as pg:
        runner.run(pg, [f"std_enterprises_{suffix}"], folder)
        unmapped, = pg.execute("SELECT unmapped FROM layer_model_runs WHERE model = %s",
                               (f"std_enterprises_{suffix}",)).fetchone()
        assert unmapped == {"status_code": ["歇业"]}
        reasons = [r[0] for r in pg.execute(
            "SELECT reason FROM layer_model_rejects WHERE model = %s AND row->>'id' = %s",
            (f"std_enterprises_{suffix}", str(firm)))]
        assert reasons == ["status '歇业' has no mapping onto code table qydjzt "
                           "(value map scjg_qydj)"]


def test_failed_model_leaves_targets_and_skips_downstream(database_url, governed):
    folder, suffix, sync, raw = governed
    std, topic = f"std_enterprises_{suffix}", f"topic_enterprises_{suffix}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        runner.run(conn, None, folder)
        before = conn.execute(f"SELECT count(*) FROM topic.enterprises_{suffix}").fetchone()
        path = folder / "models" / "std_enterprises.yaml"
        path.write_text(path.read_text(encoding="utf-8").replace(
            "sql: btrim(address)", "sql: btrim(adress)"), encoding="utf-8")
        with pytest.raises(ModelFailed, match=rf"model {std} \(target std\.enterprises_{suffix}"
                                              r"\): column \"adress\" does not exist"):
            runner.run(conn, None, folder)
        states = dict(conn.execute(
            "SELECT DISTINCT ON (model) model, state || ': ' || error FROM layer_model_runs "
            "WHERE model IN (%s, %s) ORDER BY model, id DESC", (std, topic)))
        assert states[topic].startswith(f"skipped: model {topic} (target topic.enterprises_"
                                        f"{suffix}): upstream std.enterprises_{suffix} failed: "
                                        f"its model {std} failed")
        assert conn.execute(f"SELECT count(*) FROM topic.enterprises_{suffix}").fetchone() == \
            before
        assert conn.execute(f"SELECT count(*) FROM std.enterprises_{suffix}").fetchone() == \
            before
        # a failed sync run upstream: the standard model does not read a half-loaded table
        conn.execute("INSERT INTO sync_runs (sync_id, state, error) VALUES (%s, 'failed', "
                     "'source_unavailable: test')", (sync,))
        with pytest.raises(ModelFailed, match=rf"upstream {raw.replace('.', '[.]')} failed: its "
                                              rf"sync {sync} run \d+ failed"):
            runner.run(conn, [std], folder)


def test_cli_runs_models_and_names_a_failure(database_url, settings, governed):
    """One `cityops governance run --all`: the standard model builds, the topic model's SQL
    names a column that does not exist; the exit status and message say which."""
    folder, suffix, _sync, _raw = governed
    path = folder / "models" / "topic_enterprises.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("e.phone,", "e.fax,"),
                    encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "cli", "governance", "run", "--all",
                           "--dir", str(folder)], cwd=REPO, env=settings_env(settings),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    assert (f"error: model topic_enterprises_{suffix} (target topic.enterprises_{suffix}): "
            'column e.fax does not exist') in done.stderr
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT state FROM layer_model_runs WHERE model = %s",
                            (f"std_enterprises_{suffix}",)).fetchone() == ("succeeded",)


def test_rows_held_by_a_hard_quality_rule_stay_out(database_url, governed):
    """数据质量's contract: a raw row held in quality.quarantine by a hard rule does not reach
    the standard layer; released (fixed at the source), it does on the next build."""
    folder, suffix, _sync, raw = governed
    std = f"std_enterprises_{suffix}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        runner.run(conn, [std], folder)
        uscc, firm = conn.execute(  # a firm entered once (the registry has duplicates)
            f"SELECT s.uscc, min(r.id) FROM std.enterprises_{suffix} s JOIN {raw} r ON "
            "upper(btrim(r.uscc)) = s.uscc GROUP BY s.uscc HAVING count(*) = 1 ORDER BY 2 "
            "LIMIT 1").fetchone()
        conn.execute(f"UPDATE {raw} SET legal_person = '' WHERE id = %s", (firm,))
        load_rules(conn, "rules:\n  - {name: has_legal_person, kind: format, column: "
                   "legal_person, regex: '.+', hard: true}\n", "test", raw)
        run_on(conn, raw)
        assert conn.execute("SELECT row_key FROM quality.quarantine WHERE dataset_id = %s AND "
                            "released_at IS NULL", (raw,)).fetchall() == [({"id": firm},)]
        runner.run(conn, [std], folder)
        assert conn.execute(f"SELECT count(*) FROM std.enterprises_{suffix} WHERE uscc = %s",
                            (uscc,)).fetchone() == (0,)
        conn.execute(f"UPDATE {raw} SET legal_person = '法人甲' WHERE id = %s", (firm,))
        run_on(conn, raw)
        runner.run(conn, [std], folder)
        assert conn.execute(f"SELECT legal_person FROM std.enterprises_{suffix} WHERE uscc = "
                            "%s", (uscc,)).fetchone() == ("法人甲",)
