"""A private MariaDB (市场监管局's enterprise registry) for the data-foundation tests, and a
system and source registered in the session's platform database."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator

import psycopg
import pytest

from datafoundation import register
from simulators.departments import enterprise_registry
from simulators.departments.mariadb_instance import MariaDB
from tests.helpers import free_port

SECRET_KEY = secrets.token_urlsafe(32)
_tables = itertools.count(1)


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    instance = MariaDB(tmp_path_factory.mktemp("mariadb"), free_port())
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def registry_source(mariadb: MariaDB, database_url: str) -> int:
    """The 市场监管局's system and its MariaDB source, with the password stored encrypted."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO departments (id, name) VALUES ('scjgj', '市场监管局') "
                     "ON CONFLICT DO NOTHING")
        system = register.add_system(conn, "scjg_registry", "企业登记系统", "scjgj",
                                     vendor="某软件公司", dengbao_level=2,
                                     database_kind="mariadb")
        return register.add_source(
            conn, SECRET_KEY, system, "registry-db", "mariadb",
            {"host": "127.0.0.1", "port": mariadb.port, "database": "registry",
             "user": mariadb.user}, {"password": mariadb.password})


@pytest.fixture
def firms_table(mariadb: MariaDB) -> Iterator[str]:
    """A fresh firms table of its own for one test."""
    name = f"firms_{next(_tables)}"
    conn = mariadb.connect()
    enterprise_registry.seed(conn, 300, table=name)
    conn.close()
    return name


def add_sync(database_url: str, source_id: int, table: str, **fields: object) -> int:
    fields.setdefault("mode", "incremental")
    if fields["mode"] == "incremental":
        fields.setdefault("cursor_column", "updated_at")
    with psycopg.connect(database_url, autocommit=True) as conn:
        mode, target = fields.pop("mode"), fields.pop("target", table)
        key = fields.pop("key", "id")
        keys = key if isinstance(key, list) else [key]
        return register.add_sync(conn, source_id, table, target, mode, keys, **fields)


def raw_rows(database_url: str, table: str, where: str = "true") -> dict[int, tuple]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            f"SELECT id, status, registered_capital, _deleted_at IS NOT NULL FROM "
            f"raw_scjg_registry.{table} WHERE {where}").fetchall()
    return {r[0]: r[1:] for r in rows}


def source_rows(mariadb: MariaDB, table: str) -> dict[int, tuple]:
    conn = mariadb.connect()
    with conn.cursor() as cur:
        cur.execute(f"SELECT id, status, registered_capital FROM `{table}`")
        rows = cur.fetchall()
    conn.close()
    return {r[0]: r[1:] for r in rows}
