"""An indicator's alarm: raised when its latest value turns yellow (warning) or red (major),
folded while it stays so, cleared by the platform when it turns green again; acknowledged and
cleared by people as device alarms are. A red value of an indicator with an
`open_event_category` also opens a city event (one open event per indicator and dimension,
through the events' alarm group)."""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityevents import service
from cityevents.calendar import WorkCalendar
from cityops.errors import Conflict, NotFound

SEVERITY = {"red": "major", "yellow": "warning"}


def _message(ind: dict, dimension: str, value: float, colour: str) -> str:
    where = f"（{dimension}）" if dimension else ""
    limit = ind["alarm"] if colour == "red" else ind["warning"]
    word = "低于" if ind["direction"] == "up" else "高于"
    level = "告警" if colour == "red" else "预警"
    return f"{ind['name']}{where} {value:g}{ind['unit']}，{word}{level}值 {limit:g}"


async def follow(conn: AsyncConnection, ind: dict, dimension: str, value: float, colour: str,
                 period_start: datetime, now: datetime, cal: WorkCalendar) -> None:
    cur = await conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM indicator_alarms WHERE indicator_code = %s AND dimension = %s"
        " AND state <> 'cleared' FOR UPDATE", (ind["code"], dimension))
    open_alarm = await cur.fetchone()
    if colour not in SEVERITY:
        if open_alarm is not None:
            await conn.execute("UPDATE indicator_alarms SET state = 'cleared', cleared_at = %s,"
                               " cleared_by = 'system' WHERE id = %s", (now, open_alarm["id"]))
        return
    message = _message(ind, dimension, value, colour)
    if open_alarm is None:
        cur = await conn.execute(
            "INSERT INTO indicator_alarms (indicator_code, dimension, severity, state, message,"
            " value, period_start, first_seen_at, last_seen_at) VALUES (%s, %s, %s, 'active',"
            " %s, %s, %s, %s, %s) RETURNING id",
            (ind["code"], dimension, SEVERITY[colour], message, value, period_start, now, now))
        alarm_id = (await cur.fetchone())[0]
    else:
        alarm_id = open_alarm["id"]
        await conn.execute(
            "UPDATE indicator_alarms SET count = count + 1, severity = %s, message = %s,"
            " value = %s, period_start = %s, last_seen_at = %s WHERE id = %s",
            (SEVERITY[colour], message, value, period_start, now, alarm_id))
    if colour == "red" and ind["open_event_category"]:
        await _open_event(conn, ind, dimension, message, alarm_id, now, cal)


async def _open_event(conn: AsyncConnection, ind: dict, dimension: str, message: str,
                      alarm_id: int, now: datetime, cal: WorkCalendar) -> None:
    new = service.NewEvent(
        channel="system", category_code=ind["open_event_category"], description=message,
        reporter=f"indicator:{ind['code']}", alarm_group=f"indicator:{ind['code']}:{dimension}")
    event_id = await service.create(conn, cal, new, service.SYSTEM, now)
    await conn.execute("UPDATE indicator_alarms SET event_id = %s WHERE id = %s",
                       (event_id, alarm_id))


async def act(conn: AsyncConnection, alarm_id: int, action: str, who: str,
              now: datetime) -> dict:
    """acknowledge (active only) or clear (active or acknowledged) by a person."""
    cur = await conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM indicator_alarms WHERE id = %s FOR UPDATE", (alarm_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"indicator alarm {alarm_id} does not exist")
    allowed = {"acknowledge": ("active",), "clear": ("active", "acknowledged")}[action]
    if row["state"] not in allowed:
        raise Conflict(f"indicator alarm {alarm_id} is {row['state']}: cannot {action}")
    column = "acknowledged" if action == "acknowledge" else "cleared"
    cur = await conn.cursor(row_factory=dict_row).execute(
        f"UPDATE indicator_alarms SET state = %s, {column}_at = %s, {column}_by = %s"
        " WHERE id = %s RETURNING *", (column, now, who, alarm_id))
    return await cur.fetchone()
