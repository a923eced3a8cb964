"""The shipped 城市部件 models over the 城管局's own PostgreSQL (a real database in the
cluster), the 12345 工单 models over the hotline's HTTP API, and every shipped model parses
and orders upstream first."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import psycopg

from datafoundation import register
from datafoundation.governance import models, standards
from datafoundation.governance import run as runner
from datafoundation.runner import run_sync
from infra.db.admin import drop_database
from simulators.departments import components
from simulators.departments.hotline import Hotline, serve
from tests.helpers import free_port
from tests.integration.datafoundation.conftest import SECRET_KEY


def test_shipped_models_parse_and_order():
    declared = models.discover(standards.DEFAULT_DIR)
    order = models.order(declared, list(declared))
    assert set(order) == {f"{layer}_{topic}" for layer in ("std", "topic")
                          for topic in ("enterprises", "components", "workorders")} | {
        "topic_industrial_enterprises"}
    assert order.index("std_enterprises") < order.index("topic_industrial_enterprises")
    for topic in ("enterprises", "components", "workorders"):
        assert order.index(f"std_{topic}") < order.index(f"topic_{topic}")


def _copy(tmp_path, slug: str, suffix: str):
    folder = tmp_path / "governance"
    (folder / "models").mkdir(parents=True)
    for name in ("std_components.yaml", "topic_components.yaml"):
        text = (standards.DEFAULT_DIR / "models" / name).read_text(encoding="utf-8")
        text = (text.replace("raw_cgj_components.", f"raw_{slug}.")
                .replace("std.components", f"std.components_{suffix}")
                .replace("topic.components", f"topic.components_{suffix}")
                .replace("_components\n", f"_components_{suffix}\n"))
        (folder / "models" / name).write_text(text, encoding="utf-8")
    return folder


def test_components_to_topic(stack_settings, database_url, tmp_path):
    admin = stack_settings.database_admin_url.get_secret_value()
    name = f"cityops_dept_gov_{secrets.token_hex(3)}"
    url = components.create_database(admin, name)
    try:
        components.seed(url, 120)
        with psycopg.connect(url) as conn:  # a broken row: outside the county
            conn.execute("UPDATE components SET lon = 100 WHERE id = 7")
        parts, slug, suffix = urlsplit(url), f"cgj_{secrets.token_hex(3)}", secrets.token_hex(2)
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("INSERT INTO departments (id, name) VALUES ('cgj', '城管局') "
                         "ON CONFLICT DO NOTHING")
            standards.load(conn)
            system = register.add_system(conn, slug, "城市部件管理系统", "cgj")
            source = register.add_source(
                conn, SECRET_KEY, system, f"{slug}-db", "postgresql",
                {"host": parts.hostname, "port": parts.port, "database": parts.path[1:],
                 "user": parts.username}, {"password": parts.password or ""})
            sync = register.add_sync(conn, source, "components", "components", "full", ["id"])
        run_sync(database_url, SECRET_KEY, sync)
        with psycopg.connect(database_url, autocommit=True) as conn:
            runner.run(conn, None, _copy(tmp_path, slug, suffix))
            with psycopg.connect(url) as dept:
                expected = dict(dept.execute(
                    "SELECT code, CASE status WHEN '完好' THEN '1' WHEN '破损' THEN '2' "
                    "ELSE '3' END FROM components WHERE id <> 7").fetchall())
            got = dict(conn.execute(
                f"SELECT code, status_code FROM topic.components_{suffix}").fetchall())
            assert got == expected
            assert conn.execute(
                "SELECT reason FROM layer_model_rejects WHERE model = %s",
                (f"std_components_{suffix}",)).fetchall() == [("坐标不在濉溪县范围内",)]
    finally:
        drop_database(admin, name)


def test_workorders_to_topic(database_url, tmp_path):
    line = Hotline(secrets.token_urlsafe(12), orders=60)
    line.mutate(inserts=0, updates=10)
    server = serve(line, free_port())
    slug, suffix = f"rx_{secrets.token_hex(3)}", secrets.token_hex(2)
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("INSERT INTO departments (id, name) VALUES ('xfj', '信访局') "
                         "ON CONFLICT DO NOTHING")
            standards.load(conn)
            system = register.add_system(conn, slug, "12345热线工单系统", "xfj")
            source = register.add_source(
                conn, SECRET_KEY, system, f"{slug}-api", "http_json",
                {"base_url": f"http://127.0.0.1:{server.server_address[1]}"},
                {"password": line.token})
            sync = register.add_sync(conn, source, "/api/workorders", "workorders",
                                     "incremental", ["id"], cursor_column="updated_at")
        run_sync(database_url, SECRET_KEY, sync)
    finally:
        server.shutdown()
        server.server_close()
    folder = tmp_path / "governance"
    (folder / "models").mkdir(parents=True)
    for name in ("std_workorders.yaml", "topic_workorders.yaml"):
        text = (standards.DEFAULT_DIR / "models" / name).read_text(encoding="utf-8")
        (folder / "models" / name).write_text(
            text.replace("raw_rx12345.", f"raw_{slug}.")
            .replace("std.workorders", f"std.workorders_{suffix}")
            .replace("topic.workorders", f"topic.workorders_{suffix}")
            .replace("_workorders\n", f"_workorders_{suffix}\n"), encoding="utf-8")
    with psycopg.connect(database_url, autocommit=True) as conn:
        runner.run(conn, None, folder)
        got = dict(conn.execute(f"SELECT id, closed FROM topic.workorders_{suffix}").fetchall())
        assert got == {o["id"]: o["state"] == "办结" for o in line.orders.values()}
        assert sum(got.values()) == 10
        kind, = conn.execute(f"SELECT pg_typeof(updated_at)::text FROM std.workorders_{suffix} "
                             "LIMIT 1").fetchone()
        assert kind == "timestamp with time zone"  # the JSON's text, normalised
