"""Rules edited from the API (the console's alarm rules page): list, save, enable, and a
preview of what a rule would have raised on the last 24 hours.

The workers read the `rules` table every `ingest_rules_reload_s`, so a saved rule takes effect
without a restart. Validation is the same model as `cityops rules load`; its problems are
returned as `field.path: message` parts (the console puts each beside its field).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import TypeAdapter, ValidationError

from cityops.errors import Conflict, InvalidInput, NotFound
from ingestion.rules.model import Rule, rule_body

COLUMNS = "id, kind, severity, title, enabled, body, updated_at"
_KINDS = ("threshold", "rate_of_change", "offline", "anomaly")


@cache
def _adapter() -> TypeAdapter:
    return TypeAdapter(Rule)


def validate_rule(data: Any) -> Rule:
    """The rule, or InvalidInput whose detail is `path: message; ...` per field."""
    try:
        return _adapter().validate_python(data)
    except ValidationError as err:
        parts = []
        for e in err.errors():
            # the first location element is the kind's tag (discriminated union): not a field
            loc = [str(p) for p in e["loc"]]
            if loc and loc[0] in _KINDS:
                loc = loc[1:]
            message = e["msg"].removeprefix("Value error, ")
            parts.append(f"{'.'.join(loc) or 'rule'}: {message}")
        raise InvalidInput("; ".join(parts)) from err


async def list_rules(conn: AsyncConnection) -> list[dict]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {COLUMNS}, (SELECT count(*) FROM alarms a WHERE a.rule_id = r.id"
            " AND a.state <> 'cleared') AS open_alarms FROM rules r ORDER BY id")
        return await cur.fetchall()


async def get_rule(conn: AsyncConnection, rule_id: str) -> dict:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {COLUMNS}, (SELECT count(*) FROM alarms a WHERE a.rule_id = r.id"
            " AND a.state <> 'cleared') AS open_alarms FROM rules r WHERE id = %s", (rule_id,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"rule {rule_id!r} is not registered")
    return row


async def save_rule(conn: AsyncConnection, rule: Rule, *, create: bool) -> dict:
    """Create (409 if the id is taken) or replace (404 if it is not) one validated rule."""
    values = (rule.kind, rule.severity.value, rule.title, rule_body(rule), rule.enabled)
    if create:
        try:
            await conn.execute("INSERT INTO rules (kind, severity, title, body, enabled, id)"
                               " VALUES (%s, %s, %s, %s, %s, %s)", (*values, rule.id))
        except psycopg.errors.UniqueViolation as err:
            raise Conflict(f"id: rule {rule.id!r} exists already") from err
    else:
        # a platform rule (migration 059) is the platform's own condition: switched, not edited
        if (await get_rule(conn, rule.id))["kind"] == "platform":
            raise Conflict(f"kind: rule {rule.id!r} is the platform's own; it is only enabled"
                           " or disabled")
        await conn.execute(
            "UPDATE rules SET kind = %s, severity = %s, title = %s, body = %s, enabled = %s,"
            " updated_at = now() WHERE id = %s", (*values, rule.id))
    return await get_rule(conn, rule.id)


async def set_enabled(conn: AsyncConnection, rule_id: str, enabled: bool) -> dict:
    # the body carries `enabled` too (it is the whole rule): both stay the same
    cur = await conn.execute(
        "UPDATE rules SET enabled = %s, body = jsonb_set(body, '{enabled}', to_jsonb(%s)),"
        " updated_at = now() WHERE id = %s", (enabled, enabled, rule_id))
    if cur.rowcount == 0:
        raise NotFound(f"rule {rule_id!r} is not registered")
    return await get_rule(conn, rule_id)
