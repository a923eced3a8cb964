"""数据汇聚 from the 12345 hotline's HTTP JSON API: pages resumed by (updated_since,
after_id), new and changed orders picked up, a 500 or an HTML page failing the run with what
was committed kept, the token never shown."""

from __future__ import annotations

import secrets

import psycopg
import pytest

from cityops.errors import SourceError, SourceUnavailable
from datafoundation import register
from datafoundation.runner import run_sync
from simulators.departments.hotline import Hotline, serve
from tests.helpers import free_port
from tests.integration.datafoundation.conftest import SECRET_KEY

# not the demo's rx12345: test_sim_departments registers that one in the same database
SLUG = "rx12345_t"


@pytest.fixture
def hotline():
    instance = Hotline(secrets.token_urlsafe(12), orders=150)
    server = serve(instance, free_port())
    yield instance, server.server_address[1]
    server.shutdown()
    server.server_close()


def _raw(url: str) -> dict[int, str]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute(f"SELECT id, state FROM raw_{SLUG}.workorders").fetchall())


def test_http_source_incremental_faults_and_resume(hotline, database_url):
    line, port = hotline
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO departments (id, name) VALUES ('xfj', '信访局') "
                     "ON CONFLICT DO NOTHING")
        system = register.add_system(conn, SLUG, "12345热线工单系统", "xfj")
        source = register.add_source(conn, SECRET_KEY, system, "hotline-api", "http_json",
                                     {"base_url": f"http://127.0.0.1:{port}"},
                                     {"password": line.token})
        sync = register.add_sync(conn, source, "/api/workorders", "workorders", "incremental",
                                 ["id"], cursor_column="updated_at", batch_rows=40)
    run_sync(database_url, SECRET_KEY, sync)
    assert _raw(database_url) == {o["id"]: o["state"] for o in line.orders.values()}

    line.mutate(inserts=4, updates=5)
    line.fault = "500"
    with pytest.raises(SourceUnavailable, match=r"hotline-api, endpoint /api/workorders: "
                                                r"answered HTTP 500"):
        run_sync(database_url, SECRET_KEY, sync)
    line.fault = "html"
    with pytest.raises(SourceError, match=r"answered text/html; charset=utf-8, not JSON "
                                          r"\(first bytes: '<html>") as html:
        run_sync(database_url, SECRET_KEY, sync)
    assert line.token not in html.value.detail
    line.fault = None
    run = run_sync(database_url, SECRET_KEY, sync)
    with psycopg.connect(database_url) as conn:
        read, attempt = conn.execute("SELECT rows_read, attempt FROM sync_runs WHERE id = %s",
                                     (run,)).fetchone()
    assert (read, attempt) == (9, 3)  # the interrupted run, resumed: only the 9 changes
    assert _raw(database_url) == {o["id"]: o["state"] for o in line.orders.values()}

    with psycopg.connect(database_url, autocommit=True) as conn:
        register.set_credentials(conn, SECRET_KEY, source, {"password": "nope"})
    with pytest.raises(SourceError, match="answered HTTP 401"):
        run_sync(database_url, SECRET_KEY, sync)
