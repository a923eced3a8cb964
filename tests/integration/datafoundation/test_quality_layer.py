"""A standard-layer model's build runs its target's quality rules (trigger 'layer'): the hook
in datafoundation/governance/run.py, over the shipped 法人 model built from the registry."""

from __future__ import annotations

import psycopg

from datafoundation.governance.run import run as run_models
from datafoundation.quality import load_rules
from tests.integration.datafoundation.governance import conftest as governance_kit

governed = governance_kit.governed  # the fixture

RULES = """
rules:
  - {name: uscc_once, kind: unique, columns: [uscc]}
  - {name: uscc_valid, kind: check_digit, column: uscc, standard: uscc}
  - {name: status_coded, kind: domain, column: status_code, code_table: qydjzt}
  - {name: capital_known, kind: not_null, columns: [registered_capital]}
"""


def test_a_layer_build_runs_its_targets_rules(database_url, governed) -> None:
    folder, suffix, _sync, _raw = governed
    target = f"std.enterprises_{suffix}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        run_models(conn, [f"std_enterprises_{suffix}"], folder)  # registers the target
        load_rules(conn, RULES, "test", target)
        run_models(conn, [f"std_enterprises_{suffix}"], folder)
        run_id, trigger, state, rows = conn.execute(
            "SELECT id, trigger, state, row_count FROM quality.runs WHERE dataset_id = %s "
            "ORDER BY id DESC LIMIT 1", (target,)).fetchone()
        assert (trigger, state) == ("layer", "succeeded")
        assert rows == conn.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
        failed = dict(conn.execute("SELECT rule, failed FROM quality.results WHERE run_id = %s",
                                   (run_id,)).fetchall())
    # the model rejected bad check digits and kept one row per USCC: the standard layer is clean
    assert failed == {"uscc_once": 0, "uscc_valid": 0, "status_coded": 0, "capital_known": 0}
