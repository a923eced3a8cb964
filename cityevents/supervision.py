"""The supervision sweep: red events are supervised (督办), tasks running low or over are
reminded (催办). `cityops events watch` runs it every minute; `cityops events sweep` and
`POST /v1/events/sweep` once.

Each task's light: the lead's is the event's dispose clock, a co-handler's its own clock
(cityevents/task_views.py); the event's light is the worst of its clocks and its open tasks.
A yellow task gets one reminder (reason `low`), a red one another (`overdue`, escalated to the
department's leader when the policy says so); the unique index on (clock, reason) keeps two
sweeps from sending either twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityevents import clock, reminders, service
from cityevents.calendar import WorkCalendar
from cityevents.task_views import task_clock

_REASON = {"yellow": "low", "red": "overdue"}


@dataclass
class Swept:
    supervised: list[int] = field(default_factory=list)
    reminded: list[int] = field(default_factory=list)  # reminder ids


async def sweep(conn: AsyncConnection, cal: WorkCalendar, now: datetime,
                policy: reminders.Policy | None = None) -> Swept:
    policy = policy or reminders.Policy()
    done = Swept()
    late = await _late_tasks(conn, cal, now)
    for event_id, task_id, light in late:
        note = "处置时限即将届满（自动催办）" if light == "yellow" else "已超过处置时限（自动催办）"
        row = await reminders.remind(conn, event_id, task_id, service.SYSTEM, now, note,
                                     policy, reason=_REASON[light])
        if row is not None:
            done.reminded.append(row["id"])
    # supervision after the reminders: a red event's timeline ends with its 督办
    done.supervised = await service.sweep(conn, cal, now)
    for event_id, task_id, light in late:
        if task_id is not None and light == "red" and await _supervise(conn, event_id, now):
            done.supervised.append(event_id)
    return done


async def _late_tasks(conn: AsyncConnection, cal: WorkCalendar, now: datetime
                      ) -> list[tuple[int, int | None, str]]:
    """(event, task or None for the lead, light) of every task yellow or red whose reminder
    for that light has not been sent."""
    late = []
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT e.* FROM events e WHERE e.state IN ('dispatched', 'processing')"
            " AND e.step = 'dispose' AND e.step_deadline_at IS NOT NULL AND NOT EXISTS ("
            "  SELECT 1 FROM event_reminders r WHERE r.event_id = e.id AND r.task_id IS NULL"
            "  AND r.reason = 'overdue' AND r.clock_ref = 'lead:' || e.id || ':'"
            "  || floor(extract(epoch FROM e.step_started_at))::bigint)")
        for event in await cur.fetchall():
            light = clock.view(cal, event, now).step_light
            if light in _REASON:
                late.append((event["id"], None, light))
        await cur.execute(
            "SELECT t.* FROM event_tasks t JOIN events e ON e.id = t.event_id"
            " WHERE t.state IN ('assigned', 'processing')"
            " AND e.state NOT IN ('closed', 'cancelled', 'suspended') AND NOT EXISTS ("
            "  SELECT 1 FROM event_reminders r WHERE r.task_id = t.id AND r.reason = 'overdue')"
            " ORDER BY t.id")
        for task in await cur.fetchall():
            light = task_clock(cal, task, now)["light"]
            if light in _REASON:
                late.append((task["event_id"], task["id"], light))
    return late


async def _supervise(conn: AsyncConnection, event_id: int, now: datetime) -> bool:
    """A co-handler's red light makes the event red: supervise it, once."""
    cur = await conn.execute("SELECT supervised FROM events WHERE id = %s", (event_id,))
    if (await cur.fetchone())[0]:
        return False
    await service.supervise(conn, event_id, service.SYSTEM, now,
                            "co-handling task over its time limit (red light)")
    return True
