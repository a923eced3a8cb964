"""Rules in the database: the `rules` table is the source the workers read (every
`ingest_rules_reload_s`); YAML files are one way to fill it, the API will be another."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from cityops.errors import SinkUnavailable
from ingestion.rules.model import Rule, rule_body


def save_rules(database_url: str, rules: list[Rule]) -> int:
    """Insert or replace rules by id (validated already); returns how many were saved."""
    try:
        with psycopg.connect(database_url) as conn, conn.transaction():
            conn.cursor().executemany(
                "INSERT INTO rules (id, kind, severity, title, body, enabled)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET"
                " kind = excluded.kind, severity = excluded.severity, title = excluded.title,"
                " body = excluded.body, enabled = excluded.enabled, updated_at = now()",
                [(r.id, r.kind, r.severity.value, r.title, rule_body(r), r.enabled)
                 for r in rules],
            )
    except psycopg.OperationalError as err:
        raise SinkUnavailable(f"cannot reach the database: {err}") from err
    return len(rules)


def list_rules(database_url: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT id, kind, severity, enabled, title, body FROM rules ORDER BY id")
        return cur.fetchall()
