"""Alarms: raise (deduplicated and regrouped), clear, acknowledge, and publish.

Every lifecycle step writes a row to `alarm_events` in the same transaction as the change.
That table is the history (who and when) and the outbox of the internal topic
`cityops/v1/_internal/{deployment}/alarms/{device}`: ingest workers publish unpublished rows
(QoS 1) and mark them, so a step is published at least once even if a process dies right
after committing it.

`acknowledge` and `clear` are what the API calls; they need only a psycopg AsyncConnection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson
from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import dict_row

from cityops import wire
from cityops.errors import Conflict, NotFound

log = logging.getLogger(__name__)

SYSTEM = "system"
OPEN_STATES = ("active", "acknowledged")

_COLUMNS = """a.id, a.rule_id AS rule, a.device_id AS device, p.name AS point, a.severity,
    a.state, a.message, a.value, a.reading_at, a.count, a.first_seen_at, a.last_seen_at,
    a.acknowledged_at, a.acknowledged_by, a.cleared_at, a.cleared_by"""


def alarm_topic_root(deployment: str) -> str:
    """One deployment's alarm events (wire.internal_root): another deployment on the same
    broker neither receives them nor takes them from this one's event watchers."""
    return f"{wire.internal_root(deployment)}/alarms"


def alarm_topic(device_id: str, deployment: str) -> str:
    return f"{alarm_topic_root(deployment)}/{device_id}"


async def _event(cur: AsyncCursor, alarm_id: int, kind: str, by: str, note: str = "") -> None:
    await cur.execute(
        "INSERT INTO alarm_events (alarm_id, kind, by, note) VALUES (%s, %s, %s, %s)",
        (alarm_id, kind, by, note),
    )


async def raise_alarm(
    cur: AsyncCursor, *, rule_id: str, severity: str, regroup_s: float, device_id: str,
    point_id: int | None, value: float | None, reading_at: datetime | None, message: str,
) -> tuple[int, str]:
    """Open an alarm, or fold this raise into the one that is open or recently cleared.

    Returns (alarm id, event kind): `raised` (new), `repeated` (an open alarm's count + 1) or
    `reopened` (cleared less than `regroup_s` ago: back to active, count + 1).
    """
    await cur.execute(
        "SELECT id FROM alarms WHERE rule_id = %s AND device_id = %s AND state <> 'cleared'"
        " FOR UPDATE",
        (rule_id, device_id),
    )
    row = await cur.fetchone()
    kind = "repeated"
    if row is None:
        await cur.execute(
            "SELECT id FROM alarms WHERE rule_id = %s AND device_id = %s AND state = 'cleared'"
            " AND cleared_at > now() - make_interval(secs => %s)"
            " ORDER BY cleared_at DESC LIMIT 1 FOR UPDATE",
            (rule_id, device_id, regroup_s),
        )
        row = await cur.fetchone()
        kind = "reopened"
    if row is None:
        await cur.execute(
            "INSERT INTO alarms (rule_id, device_id, point_id, severity, state, message, value,"
            " reading_at) VALUES (%s, %s, %s, %s, 'active', %s, %s, %s) RETURNING id",
            (rule_id, device_id, point_id, severity, message, value, reading_at),
        )
        row = await cur.fetchone()
        kind = "raised"
    else:
        await cur.execute(
            "UPDATE alarms SET count = count + 1, last_seen_at = now(), updated_at = now(),"
            " severity = %s, message = %s, value = %s, reading_at = %s,"
            " state = CASE WHEN state = 'cleared' THEN 'active' ELSE state END,"
            " acknowledged_at = CASE WHEN state = 'cleared' THEN NULL ELSE acknowledged_at END,"
            " acknowledged_by = CASE WHEN state = 'cleared' THEN NULL ELSE acknowledged_by END,"
            " cleared_at = NULL, cleared_by = NULL WHERE id = %s",
            (severity, message, value, reading_at, row[0]),
        )
    assert row is not None
    await _event(cur, row[0], kind, SYSTEM, message)
    return row[0], kind


async def touch_alarm(
    cur: AsyncCursor, rule_id: str, device_id: str, value: float | None,
    reading_at: datetime | None,
) -> None:
    """The condition still holds: the open alarm was seen again (no event)."""
    await cur.execute(
        "UPDATE alarms SET last_seen_at = now(), value = %s, reading_at = %s"
        " WHERE rule_id = %s AND device_id = %s AND state <> 'cleared'",
        (value, reading_at, rule_id, device_id),
    )


async def clear_by_rule(cur: AsyncCursor, rule_id: str, device_id: str, note: str) -> int | None:
    """The condition went away: clear the open alarm, if any (by `system`)."""
    await cur.execute(
        "UPDATE alarms SET state = 'cleared', cleared_at = now(), cleared_by = %s,"
        " updated_at = now() WHERE rule_id = %s AND device_id = %s AND state <> 'cleared'"
        " RETURNING id",
        (SYSTEM, rule_id, device_id),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    await _event(cur, row[0], "cleared", SYSTEM, note)
    return row[0]


async def get_alarm(conn: AsyncConnection, alarm_id: int) -> dict[str, Any]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM alarms a LEFT JOIN points p ON p.id = a.point_id"
            " WHERE a.id = %s",
            (alarm_id,),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"alarm {alarm_id} does not exist")
    return row


async def acknowledge(conn: AsyncConnection, alarm_id: int, by: str, note: str = "") -> dict:
    """active -> acknowledged, by a person; Conflict from any other state."""
    return await _step(conn, alarm_id, by, note, "acknowledged", ("active",),
                       "acknowledged_at = now(), acknowledged_by = %(by)s")


async def clear(conn: AsyncConnection, alarm_id: int, by: str, note: str = "") -> dict:
    """active or acknowledged -> cleared, by a person; Conflict if already cleared."""
    return await _step(conn, alarm_id, by, note, "cleared", OPEN_STATES,
                       "cleared_at = now(), cleared_by = %(by)s")


async def _step(
    conn: AsyncConnection, alarm_id: int, by: str, note: str, new_state: str,
    from_states: tuple[str, ...], assignments: str,
) -> dict:
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute(
            f"UPDATE alarms SET state = %(new)s, updated_at = now(), {assignments}"
            " WHERE id = %(id)s AND state = ANY(%(from)s) RETURNING id",
            {"new": new_state, "by": by, "id": alarm_id, "from": list(from_states)},
        )
        if await cur.fetchone() is None:
            current = await get_alarm(conn, alarm_id)  # NotFound if there is no such alarm
            raise Conflict(f"alarm {alarm_id} is {current['state']}: cannot become {new_state}")
        await _event(cur, alarm_id, new_state, by, note)
    return await get_alarm(conn, alarm_id)


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def event_payload(row: dict[str, Any]) -> bytes:
    """The internal topic's message: what happened (event) and the alarm as it is now."""
    alarm = {k: row[k] for k in ("id", "rule", "device", "point", "severity", "state",
                                 "message", "value", "count", "acknowledged_by", "cleared_by")}
    for key in ("reading_at", "first_seen_at", "last_seen_at", "acknowledged_at", "cleared_at"):
        alarm[key] = _ms(row[key])
    return orjson.dumps({
        "event_id": row["event_id"], "event": row["event"], "at": _ms(row["event_at"]),
        "by": row["event_by"], "note": row["event_note"], "alarm": alarm,
    })


Publish = Callable[[str, bytes], Awaitable[None]]


async def publish_pending(conn: AsyncConnection, publish: Publish, deployment: str,
                          limit: int = 500) -> int:
    """Publish unpublished alarm events in order; rows locked by another worker are skipped."""
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT e.id AS event_id, e.kind AS event, e.at AS event_at, e.by AS event_by,"
            f" e.note AS event_note, {_COLUMNS}"
            " FROM alarm_events e JOIN alarms a ON a.id = e.alarm_id"
            " LEFT JOIN points p ON p.id = a.point_id WHERE e.published_at IS NULL"
            " ORDER BY e.id LIMIT %s FOR UPDATE OF e SKIP LOCKED",
            (limit,),
        )
        rows = await cur.fetchall()
        if not rows:
            return 0
        await asyncio.gather(*(publish(alarm_topic(r["device"], deployment), event_payload(r))
                               for r in rows))
        await cur.execute(
            "UPDATE alarm_events SET published_at = now() WHERE id = ANY(%s)",
            ([r["event_id"] for r in rows],),
        )
    return len(rows)
