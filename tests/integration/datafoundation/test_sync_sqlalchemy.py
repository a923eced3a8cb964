"""Sources reached through an SQLAlchemy URL (the path for 达梦, 人大金仓 and other databases
with an SQLAlchemy dialect), tested against the real MariaDB and PostgreSQL simulators: full
and incremental loads, the password stored encrypted and never shown."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import psycopg
import pytest

from cityops.errors import SourceError, SyncRejected
from datafoundation import register
from datafoundation.runner import run_sync
from simulators.departments import components, enterprise_registry
from tests.integration.datafoundation.conftest import SECRET_KEY, raw_rows, source_rows


def _source(database_url: str, slug: str, url: str, password: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO departments (id, name) VALUES ('scjgj', '市场监管局') "
                     "ON CONFLICT DO NOTHING")
        system = conn.execute("SELECT id FROM systems WHERE slug = %s", (slug,)).fetchone()
        system = system[0] if system else register.add_system(conn, slug, slug, "scjgj")
        return register.add_source(conn, SECRET_KEY, system, f"sa-{secrets.token_hex(2)}",
                                   "sqlalchemy", {"url": url}, {"password": password})


def test_mariadb_through_an_sqlalchemy_url(mariadb, database_url, firms_table):
    url = f"mysql+mysqldb://{mariadb.user}@127.0.0.1:{mariadb.port}/registry"
    source = _source(database_url, "scjg_registry", url, mariadb.password)
    with psycopg.connect(database_url, autocommit=True) as conn:
        sync = register.add_sync(conn, source, firms_table, f"{firms_table}_sa", "incremental",
                                 ["id"], cursor_column="updated_at", batch_rows=70,
                                 deletes="compare")
    run_sync(database_url, SECRET_KEY, sync)
    loaded = raw_rows(database_url, f"{firms_table}_sa")
    assert {k: v[:2] for k, v in loaded.items()} == source_rows(mariadb, firms_table)

    conn = mariadb.connect()
    touched = enterprise_registry.mutate(conn, inserts=3, updates=4, deletes=2,
                                         soft_deletes=0, seed_value=9, table=firms_table)
    conn.close()
    run_sync(database_url, SECRET_KEY, sync)
    after = raw_rows(database_url, f"{firms_table}_sa")
    now = source_rows(mariadb, firms_table)
    assert {k: v[:2] for k, v in after.items() if not v[2]} == now
    assert all(after[k][2] for k in touched["deleted"])

    with psycopg.connect(database_url, autocommit=True) as conn:
        register.set_credentials(conn, SECRET_KEY, source, {"password": "Wr0ng-sa-pass"})
    with pytest.raises(SourceError, match=r"cannot connect.*Access denied") as refused:
        run_sync(database_url, SECRET_KEY, sync)
    assert "Wr0ng-sa-pass" not in str(refused.value)


def test_postgresql_through_an_sqlalchemy_url(database_url):
    # the 部件 table in a schema of the session's database (a database of its own would cost
    # a CREATE DATABASE): reached through a postgresql+psycopg URL with settings.schema
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS dept_sa")
    inventory = f"{database_url}?options=-csearch_path%3Ddept_sa"
    components.seed(inventory, 150)
    parts = urlsplit(database_url)
    source = _source(database_url, "cgj_components_sa",
                     f"postgresql+psycopg://{parts.username}@{parts.hostname}:{parts.port}"
                     f"{parts.path}", parts.password or "")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE sources SET settings = settings || '{\"schema\": \"dept_sa\"}' "
                     "WHERE id = %s", (source,))
        sync = register.add_sync(conn, source, "components", "components", "full", ["id"],
                                 batch_rows=40)
        bad = register.add_source(conn, SECRET_KEY, conn.execute(
            "SELECT id FROM systems WHERE slug = 'cgj_components_sa'").fetchone()[0],
            "sa-with-password", "sqlalchemy", {"url": "postgresql://u:secret@h/db"})
        bad_sync = register.add_sync(conn, bad, "components", "x", "full", ["id"])
    run_sync(database_url, SECRET_KEY, sync)
    with psycopg.connect(database_url) as conn:
        got = dict(conn.execute("SELECT id, lon FROM raw_cgj_components_sa.components"))
        want = dict(conn.execute("SELECT id, lon FROM dept_sa.components"))
    assert got == want and len(got) == 150
    with pytest.raises(SyncRejected, match=r"settings\.url carries a password"):
        run_sync(database_url, SECRET_KEY, bad_sync)
