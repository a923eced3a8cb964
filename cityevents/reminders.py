"""催办: reminders to the department working a task (the lead's or a co-handler's).

A dispatcher sends one by hand; the supervision sweep (cityevents/supervision.py) sends one by
itself when a task's light turns yellow (time running low) and when it turns red (overdue),
once per clock. A reminder escalates to the department's leader (notification kind
`event_escalated`, audience `department_leader`) when it is the task's Nth
(`CITYOPS_EVENT_REMINDER_ESCALATE_AFTER`, 2) or when the task is overdue
(`CITYOPS_EVENT_REMINDER_ESCALATE_OVERDUE`). Each is a row of event_reminders, which the
notification worker reads, and a `remind` row on the event's timeline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityevents.service import check_role, lock_event, log_transition, update_event
from cityops.errors import Conflict, InvalidInput
from cityops.principal import Principal, Role

REMINDER_ROLES = frozenset({Role.ADMIN, Role.DISPATCHER})


@dataclass(frozen=True)
class Policy:
    escalate_after: int = 2  # the task's Nth reminder goes to the leader too
    escalate_overdue: bool = True  # and so does the sweep's reminder of an overdue task


def reminder_policy(settings) -> Policy:
    """The policy of the deployment's settings (cityops/settings.py)."""
    return Policy(settings.event_reminder_escalate_after,
                  settings.event_reminder_escalate_overdue)


def lead_clock_ref(event: dict) -> str:
    """The lead's dispose clock: one per dispatch (a re-dispatch after 回退 starts another)."""
    return f"lead:{event['id']}:{math.floor(event['step_started_at'].timestamp())}"


def task_clock_ref(task_id: int) -> str:
    return f"task:{task_id}"


async def _target(conn: AsyncConnection, event: dict, task_id: int | None) -> tuple[str, str]:
    """(department, clock ref) of the task reminded; 409 when it is not being worked."""
    if task_id is None:
        if event["state"] not in ("dispatched", "processing") or event["department_id"] is None:
            raise Conflict(f"event {event['id']} is {event['state']}: the lead has no task"
                           " running to remind of")
        return event["department_id"], lead_clock_ref(event)
    cur = await conn.execute("SELECT department_id, state FROM event_tasks"
                             " WHERE id = %s AND event_id = %s", (task_id, event["id"]))
    row = await cur.fetchone()
    if row is None:
        raise InvalidInput(f"task_id: event {event['id']} has no co-handling task {task_id}")
    if row[1] not in ("assigned", "processing"):
        raise Conflict(f"task {task_id} is {row[1]}: nothing to remind of")
    return row[0], task_clock_ref(task_id)


async def remind(conn: AsyncConnection, event_id: int, task_id: int | None,
                 principal: Principal, now: datetime, note: str, policy: Policy,
                 reason: str = "manual") -> dict | None:
    """Record one reminder (and its timeline row); returns it. `reason` is manual, low or
    overdue (the last two from the sweep, at most once per clock: None when already sent)."""
    if principal.kind != "system":
        check_role(principal, REMINDER_ROLES, "send reminders (催办)")
    async with conn.transaction():
        event = await lock_event(conn, event_id)
        department, ref = await _target(conn, event, task_id)
        cur = await conn.execute(
            "SELECT count(*) FROM event_reminders WHERE event_id = %s"
            " AND task_id IS NOT DISTINCT FROM %s AND clock_ref = %s", (event_id, task_id, ref))
        number = (await cur.fetchone())[0] + 1
        escalated = number >= policy.escalate_after or (
            reason == "overdue" and policy.escalate_overdue)
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "INSERT INTO event_reminders (event_id, task_id, department_id, number, reason,"
                " escalated, note, actor, at, clock_ref) VALUES (%s, %s, %s, %s, %s, %s, %s, %s,"
                " %s, %s) ON CONFLICT DO NOTHING RETURNING *",
                (event_id, task_id, department, number, reason, escalated, note,
                 principal.name, now, ref))
            row = await cur.fetchone()
        if row is None:
            return None  # the sweep's reminder of this clock was already sent
        transition = await log_transition(
            conn, event_id, "remind", event["state"], event["state"], principal, now, note,
            department, detail={"task": task_id, "reminder": row["id"], "number": number,
                                "reason": reason, "escalated": escalated})
        await conn.execute("UPDATE event_reminders SET transition_id = %s WHERE id = %s",
                           (transition, row["id"]))
        await update_event(conn, event_id, {}, now)
    return row


async def listing(conn: AsyncConnection, event_id: int) -> list[dict]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT id, task_id, department_id, number, reason, escalated, note,"
                          " actor, at FROM event_reminders WHERE event_id = %s ORDER BY id",
                          (event_id,))
        return await cur.fetchall()
