"""Alarms of chosen rules open city events: one open event per alarm group.

The alarm steps arrive from the internal topic (see watch.py) as the payload of
ingestion/alarms.py `event_payload`. A `raised` or `reopened` alarm opens an event for its
group unless the group has one open already, which is then annotated instead; `repeated`,
`acknowledged` and `cleared` steps only annotate. A cleared alarm never closes an event: the
condition going away says nothing about whether anyone fixed the cause. Each alarm step is
handled once (event_alarm_links), since the topic delivers at least once.
"""

from __future__ import annotations

import logging
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityevents import service
from cityevents.calendar import WorkCalendar
from cityops.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)
OPENING = ("raised", "reopened")


def group_key(mapping: dict, alarm: dict, site: str | None) -> str:
    if mapping["group_by"] == "rule":
        return f"alarm:{alarm['rule']}"
    if mapping["group_by"] == "site":
        return f"alarm:{alarm['rule']}:site:{site or '-'}"
    return f"alarm:{alarm['rule']}:device:{alarm['device']}"


async def _mapping(conn: AsyncConnection, rule: str) -> dict | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT * FROM event_alarm_rules WHERE rule_id = %s AND enabled", (rule,)
        )
        return await cur.fetchone()


async def _device(conn: AsyncConnection, device: str) -> dict:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT d.id, d.title, d.site_id, d.latitude, d.longitude, s.name AS site_name"
            " FROM devices d LEFT JOIN sites s ON s.id = d.site_id WHERE d.id = %s",
            (device,),
        )
        return await cur.fetchone() or {"id": device, "title": "", "site_id": None,
                                        "latitude": None, "longitude": None, "site_name": None}


async def _open_event(conn: AsyncConnection, group: str) -> int | None:
    cur = await conn.execute(
        "SELECT id FROM events WHERE alarm_group = %s AND state NOT IN ('closed', 'cancelled')",
        (group,),
    )
    row = await cur.fetchone()
    return row[0] if row else None


def _new_event(mapping: dict, alarm: dict, device: dict, group: str) -> service.NewEvent:
    urgency = mapping["urgency"] or ("urgent" if alarm["severity"] == "critical" else "normal")
    where = device["title"] or device["id"]
    return service.NewEvent(
        channel="sensor", category_code=mapping["category_code"], urgency=urgency,
        description=f"[{alarm['severity']}] {alarm['message']} ({where})",
        address=device["site_name"] or device["site_id"] or "",
        latitude=device["latitude"], longitude=device["longitude"],
        external_ref=f"alarm:{alarm['id']}", alarm_group=group, reporter=f"rule:{alarm['rule']}",
    )


async def handle(
    conn: AsyncConnection, cal: WorkCalendar, message: dict, now: datetime
) -> int | None:
    """Handle one alarm step; returns the event it opened or annotated (None: not ours)."""
    try:
        step, alarm, step_id = message["event"], message["alarm"], int(message["event_id"])
    except (KeyError, TypeError, ValueError) as err:
        raise InvalidInput(f"not an alarm step message: {err!r}") from err
    mapping = await _mapping(conn, alarm["rule"])
    if mapping is None:
        return None
    async with conn.transaction():
        cur = await conn.execute(
            "INSERT INTO event_alarm_links (alarm_event_id, alarm_id, kind) VALUES (%s, %s, %s)"
            " ON CONFLICT DO NOTHING", (step_id, alarm["id"], step),
        )
        if cur.rowcount == 0:
            return None  # handled before: a redelivery
        device = await _device(conn, alarm["device"])
        group = group_key(mapping, alarm, device["site_id"])
        event_id = await _open_event(conn, group)
        if event_id is None and step in OPENING:
            new = _new_event(mapping, alarm, device, group)
            event_id = await service.create(conn, cal, new, service.SYSTEM, now)
            log.info("alarm %s of rule %s opened event %s", alarm["id"], alarm["rule"], event_id)
        elif event_id is not None:
            await _annotate(conn, event_id, step, alarm, now)
        await conn.execute("UPDATE event_alarm_links SET event_id = %s WHERE alarm_event_id = %s",
                           (event_id, step_id))
    return event_id


async def _annotate(conn: AsyncConnection, event_id: int, step: str, alarm: dict,
                    now: datetime) -> None:
    event = await service.lock_event(conn, event_id)
    note = f"alarm {alarm['id']} {step}: {alarm['message']} (count {alarm.get('count')})"
    await service.log_transition(
        conn, event_id, f"alarm_{step}", event["state"], event["state"], service.SYSTEM, now,
        note, event["department_id"], detail={"alarm": alarm["id"], "step": step},
    )


async def map_rule(conn: AsyncConnection, rule_id: str, mapping: dict) -> dict:
    """Make a rule's alarms open events (or change how); the rule and category must exist."""
    cur = await conn.execute("SELECT 1 FROM rules WHERE id = %s", (rule_id,))
    if await cur.fetchone() is None:
        raise NotFound(f"alarm rule {rule_id!r} does not exist")
    cur = await conn.execute("SELECT 1 FROM event_categories WHERE code = %s",
                             (mapping["category_code"],))
    if await cur.fetchone() is None:
        raise InvalidInput(f"category {mapping['category_code']!r} is not an event category")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "INSERT INTO event_alarm_rules (rule_id, category_code, group_by, urgency, enabled)"
            " VALUES (%(rule)s, %(category_code)s, %(group_by)s, %(urgency)s, %(enabled)s)"
            " ON CONFLICT (rule_id) DO UPDATE SET category_code = excluded.category_code,"
            " group_by = excluded.group_by, urgency = excluded.urgency,"
            " enabled = excluded.enabled, updated_at = now() RETURNING *",
            {"rule": rule_id, **mapping},
        )
        return await cur.fetchone()


async def mapped_rules(conn: AsyncConnection) -> list[dict]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM event_alarm_rules ORDER BY rule_id")
        return await cur.fetchall()
