"""The dataset register: a sync registers its raw table after each run, and re-registering
keeps the governance done on the fields since."""

from __future__ import annotations

import psycopg
import pytest

from cityops.errors import InvalidInput
from datafoundation.governance import Field, register_dataset
from datafoundation.runner import run_sync
from tests.integration.datafoundation.conftest import SECRET_KEY, add_sync


def test_sync_registers_its_raw_table(database_url, registry_source, firms_table):
    sync = add_sync(database_url, registry_source, firms_table, mode="full")
    run_sync(database_url, SECRET_KEY, sync)
    dataset = f"raw_scjg_registry.{firms_table}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT layer, department_id, sync_id, primary_key FROM datasets "
                           "WHERE id = %s", (dataset,)).fetchone()
        assert row == ("raw", "scjgj", sync, ["id"])
        names = [r[0] for r in conn.execute(
            "SELECT name FROM dataset_fields WHERE dataset_id = %s ORDER BY position",
            (dataset,))]
        assert names[0] == "id" and "uscc" in names and "_synced_at" in names
        # governance on a field survives the next run's re-registration
        conn.execute("UPDATE dataset_fields SET title = '统一社会信用代码', sensitivity = 1 "
                     "WHERE dataset_id = %s AND name = 'uscc'", (dataset,))
    run_sync(database_url, SECRET_KEY, sync)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT title, sensitivity FROM dataset_fields WHERE dataset_id "
                            "= %s AND name = 'uscc'", (dataset,)).fetchone() == (
            "统一社会信用代码", 1)


def test_register_dataset_upserts_and_refuses_bad_input(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO departments (id, name) VALUES ('scjgj', '市场监管局') "
                     "ON CONFLICT DO NOTHING")
        register_dataset(conn, "std.gov_probe", "探针", "standard", "scjgj",
                         primary_key=["a"], fields=[Field("a", "text", "甲"),
                                                    {"name": "b", "data_type": "integer"}])
        register_dataset(conn, "std.gov_probe", "探针二", "standard", "scjgj",
                         fields=[Field("a", "text", sensitivity=2, mask_kind="name")])
        assert conn.execute("SELECT name FROM datasets WHERE id = 'std.gov_probe'"
                            ).fetchone() == ("探针二",)
        assert conn.execute("SELECT name, title, sensitivity, mask_kind FROM dataset_fields "
                            "WHERE dataset_id = 'std.gov_probe'").fetchall() == [
            ("a", "甲", 2, "name")]
        with pytest.raises(InvalidInput, match="layer 'gold'"):
            register_dataset(conn, "std.gov_probe", "x", "gold", "scjgj")
        with pytest.raises(InvalidInput, match="field a: mask_kind 'blur'"):
            register_dataset(conn, "std.gov_probe", "x", "standard", "scjgj",
                             fields=[Field("a", "text", mask_kind="blur")])
