"""The system register (信息系统"一本账"), sources and syncs as rows. Credentials go in
encrypted and never come out of this module except to a source adapter (runner.py)."""

from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb

from datafoundation.secrets import encrypt

SOURCE_FIELDS = "id, system_id, name, kind, settings, secret IS NOT NULL AS has_secret"


def add_system(conn: psycopg.Connection, slug: str, name: str, department_id: str,
               **fields: object) -> int:
    cols = ["slug", "name", "department_id", *fields]
    row = conn.execute(
        f"INSERT INTO systems ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))}) "
        "RETURNING id", (slug, name, department_id, *fields.values())).fetchone()
    return row[0]


def add_source(conn: psycopg.Connection, secret_key: str, system_id: int, name: str, kind: str,
               settings: dict, credentials: dict[str, str] | None = None) -> int:
    token = encrypt(secret_key, credentials) if credentials else None
    row = conn.execute(
        "INSERT INTO sources (system_id, name, kind, settings, secret) VALUES (%s, %s, %s, %s, "
        "%s) RETURNING id", (system_id, name, kind, Jsonb(settings), token)).fetchone()
    return row[0]


def set_credentials(conn: psycopg.Connection, secret_key: str, source_id: int,
                    credentials: dict[str, str]) -> None:
    conn.execute("UPDATE sources SET secret = %s WHERE id = %s",
                 (encrypt(secret_key, credentials), source_id))


def add_sync(conn: psycopg.Connection, source_id: int, object_name: str, target_table: str,
             mode: str, primary_key: list[str], **fields: object) -> int:
    cols = ["source_id", "object", "target_table", "mode", "primary_key", *fields]
    row = conn.execute(
        f"INSERT INTO syncs ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))}) "
        "RETURNING id",
        (source_id, object_name, target_table, mode, primary_key, *fields.values())).fetchone()
    return row[0]
