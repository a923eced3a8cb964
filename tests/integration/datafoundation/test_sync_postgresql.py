"""数据汇聚 from a department's own PostgreSQL (城管局 部件): full and incremental loads with
inserts, updates and deletes, a wrong password refused without showing it."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import psycopg
import pytest

from cityops.errors import SourceError
from datafoundation import register
from datafoundation.runner import run_sync
from infra.db.admin import drop_database
from simulators.departments import components
from tests.integration.datafoundation.conftest import SECRET_KEY


@pytest.fixture
def inventory(stack_settings):
    admin = stack_settings.database_admin_url.get_secret_value()
    name = f"cityops_dept_cgj_{secrets.token_hex(3)}"
    url = components.create_database(admin, name)
    components.seed(url, 200)
    yield url
    drop_database(admin, name)


def test_postgresql_source_full_incremental_and_deletes(inventory, database_url):
    parts = urlsplit(inventory)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO departments (id, name) VALUES ('cgj', '城管局') "
                     "ON CONFLICT DO NOTHING")
        # not the demo's cgj_components: test_sim_departments registers that one here too
        system = register.add_system(conn, "cgj_components_t", "城市部件管理系统", "cgj")
        source = register.add_source(
            conn, SECRET_KEY, system, "components-db", "postgresql",
            {"host": parts.hostname, "port": parts.port, "database": parts.path[1:],
             "user": parts.username}, {"password": parts.password or ""})
        sync = register.add_sync(conn, source, "components", "components", "incremental",
                                 ["id"], cursor_column="updated_at", deletes="compare",
                                 batch_rows=64)
    run_sync(database_url, SECRET_KEY, sync)
    touched = components.mutate(inventory, seed_value=5)
    second = run_sync(database_url, SECRET_KEY, sync)
    with psycopg.connect(database_url) as conn:
        read, deleted = conn.execute("SELECT rows_read, rows_deleted FROM sync_runs "
                                     "WHERE id = %s", (second,)).fetchone()
        raw = {r[0]: r[1:] for r in conn.execute(
            "SELECT id, status, lon, _deleted_at IS NOT NULL FROM "
            "raw_cgj_components_t.components").fetchall()}
    with psycopg.connect(inventory) as conn:
        source_rows = {r[0]: r[1:] for r in conn.execute(
            "SELECT id, status, lon FROM components").fetchall()}
    assert (read, deleted) == (6, 1)  # 3 new + 3 updated read again; 1 deletion marked
    assert {k: v[:2] for k, v in raw.items() if not v[2]} == source_rows
    assert all(raw[k][2] for k in touched["deleted"])

    if parts.password:
        with psycopg.connect(database_url, autocommit=True) as conn:
            register.set_credentials(conn, SECRET_KEY, source, {"password": "wrong-" + "x" * 8})
        with pytest.raises(SourceError, match="source components-db: cannot connect") as err:
            run_sync(database_url, SECRET_KEY, sync)
        assert not err.value.retryable and "wrong-xxxxxxxx" not in err.value.detail
