"""A sync exported as an Apache SeaTunnel job config (HOCON) or a DataX job (JSON), for a county
that runs those engines. Passwords are never written: the configs carry placeholders
(${SOURCE_PASSWORD}, ${TARGET_PASSWORD}) to fill in on the engine's side. Only table sources
(MariaDB/MySQL, PostgreSQL) export; the engines themselves were not run here."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import psycopg

from cityops.errors import InvalidInput, NotFound

_JDBC = {"mariadb": ("mysql", "com.mysql.cj.jdbc.Driver", "mysqlreader"),
         "mysql": ("mysql", "com.mysql.cj.jdbc.Driver", "mysqlreader"),
         "postgresql": ("postgresql", "org.postgresql.Driver", "postgresqlreader")}


def _sync(conn: psycopg.Connection, sync_id: int) -> dict:
    row = conn.execute(
        "SELECT so.kind, so.settings, sy.slug, s.object, s.target_table, s.mode, "
        "s.cursor_column, s.primary_key, st.cursor_value FROM syncs s "
        "JOIN sources so ON so.id = s.source_id JOIN systems sy ON sy.id = so.system_id "
        "LEFT JOIN sync_state st ON st.sync_id = s.id WHERE s.id = %s", (sync_id,)).fetchone()
    if row is None:
        raise NotFound(f"sync {sync_id} does not exist")
    keys = ("kind", "settings", "system", "table", "target", "mode", "cursor", "key", "since")
    spec = dict(zip(keys, row, strict=True))
    if spec["kind"] not in _JDBC:
        raise InvalidInput(f"sync {sync_id}: a {spec['kind']} source has no SeaTunnel/DataX "
                           "export (table sources only)")
    return spec


def _where(spec: dict) -> str:
    if spec["mode"] == "incremental" and spec["since"]:
        return f"{spec['cursor']} > '{spec['since']}'"
    return ""


def _target(database_url: str) -> tuple[str, str]:
    url = urlsplit(database_url)
    return (f"jdbc:postgresql://{url.hostname}:{url.port or 5432}{url.path}",
            url.username or "")


def datax_job(conn: psycopg.Connection, sync_id: int, database_url: str) -> str:
    spec = _sync(conn, sync_id)
    scheme, _driver, reader = _JDBC[spec["kind"]]
    s = spec["settings"]
    target_url, target_user = _target(database_url)
    reader_params = {
        "username": s.get("user", ""), "password": "${SOURCE_PASSWORD}", "column": ["*"],
        "splitPk": spec["key"][0],
        "connection": [{"table": [spec["table"]], "jdbcUrl": [
            f"jdbc:{scheme}://{s.get('host')}:{s.get('port')}/{s.get('database')}"]}]}
    if _where(spec):
        reader_params["where"] = _where(spec)
    job = {"job": {"setting": {"speed": {"channel": 1}}, "content": [{
        "reader": {"name": reader, "parameter": reader_params},
        "writer": {"name": "postgresqlwriter", "parameter": {
            "username": target_user, "password": "${TARGET_PASSWORD}", "column": ["*"],
            "connection": [{"jdbcUrl": target_url,
                            "table": [f"raw_{spec['system']}.{spec['target']}"]}]}}}]}}
    return json.dumps(job, ensure_ascii=False, indent=2)


def seatunnel_config(conn: psycopg.Connection, sync_id: int, database_url: str) -> str:
    spec = _sync(conn, sync_id)
    scheme, driver, _reader = _JDBC[spec["kind"]]
    s = spec["settings"]
    target_url, target_user = _target(database_url)
    where = f" WHERE {_where(spec)}" if _where(spec) else ""
    query = f"SELECT * FROM {spec['table']}{where}"
    keys = ", ".join(json.dumps(k) for k in spec["key"])
    return (
        'env {\n  parallelism = 1\n  job.mode = "BATCH"\n}\n'
        "source {\n  Jdbc {\n"
        f'    url = "jdbc:{scheme}://{s.get("host")}:{s.get("port")}/{s.get("database")}"\n'
        f'    driver = "{driver}"\n    user = {json.dumps(s.get("user", ""))}\n'
        '    password = "${SOURCE_PASSWORD}"\n'
        f"    query = {json.dumps(query, ensure_ascii=False)}\n"
        f'    partition_column = "{spec["key"][0]}"\n  }}\n}}\n'
        "sink {\n  Jdbc {\n"
        f'    url = "{target_url}"\n    driver = "org.postgresql.Driver"\n'
        f"    user = {json.dumps(target_user)}\n"
        '    password = "${TARGET_PASSWORD}"\n'
        f'    database = "{target_url.rsplit("/", 1)[-1]}"\n'
        f'    table = "raw_{spec["system"]}.{spec["target"]}"\n'
        "    generate_sink_sql = true\n"
        f"    primary_keys = [{keys}]\n"
        "    support_upsert_by_query_primary_key_exist = true\n  }\n}\n")
