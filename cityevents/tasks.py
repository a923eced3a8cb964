"""Co-handling (跨部门协同处置): the co-handling departments' (协办) tasks of an event.

The lead department (主办) is the event's own department and works the event's own workflow
(dispatch, accept, feedback, check, close). The dispatcher adds co-handling departments while
the lead has the case; each gets a task with its own clock (the category's `dispose` limit, or
one the dispatcher sets), takes it (accept), answers with feedback and photos (the event's
attachments), and is rated by the lead. The event closes only when every co-handling task is
done or released (cityevents/service.py `act`). Every change locks the event row first, so it
serialises with the event's own steps, and writes one timeline row (event_transitions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation
from psycopg.rows import dict_row

from cityevents.calendar import WorkCalendar
from cityevents.service import (
    check_role,
    department_of,
    limits_for,
    lock_event,
    log_transition,
    update_event,
)
from cityevents.workflow import State
from cityops.errors import Conflict, Forbidden, InvalidInput, NotFound
from cityops.principal import Principal, Role
from datafoundation.catalogue import objects

OPEN_TASK_STATES = ("assigned", "processing")
# co-handlers join while the lead has the case (dispatched, processing or suspended): before
# dispatch there is no lead; after its feedback the case is being checked
JOIN_STATES = frozenset({State.DISPATCHED, State.PROCESSING, State.SUSPENDED})
DISPATCHERS = frozenset({Role.ADMIN, Role.DISPATCHER})
RATINGS = ("satisfied", "fair", "unsatisfied")  # 满意 / 基本满意 / 不满意 (sends it back)


@dataclass
class NewTask:
    department_id: str
    instructions: str = ""
    amount: float | None = None  # None: the category's dispose limit
    unit: str | None = None


@dataclass
class TaskStep:
    note: str = ""
    attachment_ids: list[int] = field(default_factory=list)
    rating: str | None = None


async def lock_task(conn: AsyncConnection, event_id: int, task_id: int) -> dict:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM event_tasks WHERE id = %s AND event_id = %s FOR UPDATE",
                          (task_id, event_id))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"event {event_id} has no co-handling task {task_id}")
    return row


async def _task_limit(conn: AsyncConnection, cal: WorkCalendar, event: dict, new: NewTask
                      ) -> tuple[str, float]:
    if (new.amount is None) != (new.unit is None):
        raise InvalidInput("amount, unit: give both (a limit of the dispatcher's) or neither"
                           " (the category's dispose limit)")
    if new.amount is not None:
        return new.unit, cal.limit_seconds(new.amount, new.unit)
    limits = await limits_for(conn, event["category_code"], event["urgency"])
    if "dispose" not in limits:
        raise InvalidInput("amount, unit: the category has no dispose limit; set one")
    amount, unit = limits["dispose"]
    return unit, cal.limit_seconds(amount, unit)


async def add(conn: AsyncConnection, cal: WorkCalendar, event_id: int, principal: Principal,
              now: datetime, new: NewTask) -> int:
    """The dispatcher adds a co-handling department (协办) to an event the lead has."""
    check_role(principal, DISPATCHERS, "add co-handling departments")
    async with conn.transaction():
        event = await lock_event(conn, event_id)
        if State(event["state"]) not in JOIN_STATES:
            allowed = ", ".join(sorted(s.value for s in JOIN_STATES))
            raise Conflict(f"event {event_id} is {event['state']}: co-handlers join while it is"
                           f" {allowed}")
        if new.department_id == event["department_id"]:
            raise InvalidInput(f"department_id: {new.department_id!r} is the lead department")
        cur = await conn.execute("SELECT 1 FROM departments WHERE id = %s", (new.department_id,))
        if await cur.fetchone() is None:
            raise InvalidInput(f"department_id: department {new.department_id!r} is not"
                               " registered")
        unit, limit_s = await _task_limit(conn, cal, event, new)
        try:
            async with conn.transaction():
                cur = await conn.execute(
                    "INSERT INTO event_tasks (event_id, department_id, instructions, assigned_by,"
                    " assigned_at, unit, limit_s, deadline_at, updated_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                    (event_id, new.department_id, new.instructions, principal.name, now, unit,
                     limit_s, cal.deadline(now, limit_s, unit), now))
        except UniqueViolation:
            raise Conflict(f"department_id: {new.department_id!r} already co-handles event"
                           f" {event_id}") from None
        task_id = (await cur.fetchone())[0]
        await _log(conn, event, "cohandler_add", principal, now, new.instructions,
                   new.department_id, task_id, {"unit": unit, "limit_s": limit_s})
    return task_id


async def _log(conn: AsyncConnection, event: dict, action: str, principal: Principal,
               now: datetime, note: str, department: str, task_id: int,
               detail: dict | None = None, on_time: bool | None = None) -> int:
    """A timeline row of a task step; the event's state does not change."""
    transition = await log_transition(
        conn, event["id"], action, event["state"], event["state"], principal, now, note,
        department, on_time, detail={"task": task_id, **(detail or {})})
    await update_event(conn, event["id"], {}, now)  # updated_at: the case moved
    return transition


async def _scoped(conn: AsyncConnection, principal: Principal, department: str, what: str
                  ) -> None:
    """Department staff act only for their own department."""
    if principal.role != Role.DEPARTMENT_STAFF:
        return
    mine = await department_of(conn, principal)
    if mine != department:
        raise Forbidden(f"{what} is department {department!r}'s, not yours ({mine!r})")


async def release(conn: AsyncConnection, event_id: int, task_id: int, principal: Principal,
                  now: datetime, note: str) -> None:
    """The dispatcher releases (解除) a co-handler: its task no longer holds the event open."""
    check_role(principal, DISPATCHERS, "release co-handling departments")
    if not note.strip():
        raise InvalidInput("note: releasing a co-handler needs a reason")
    async with conn.transaction():
        event = await lock_event(conn, event_id)
        task = await lock_task(conn, event_id, task_id)
        if task["state"] == "released" or event["state"] in ("closed", "cancelled"):
            raise Conflict(f"task {task_id} is {task['state']} on a {event['state']} event:"
                           " nothing to release")
        await conn.execute(
            "UPDATE event_tasks SET state = 'released', released_at = %s, release_note = %s,"
            " updated_at = %s WHERE id = %s", (now, note, now, task_id))
        await _log(conn, event, "cohandler_release", principal, now, note,
                   task["department_id"], task_id, {"was": task["state"]})


async def step(conn: AsyncConnection, event_id: int, task_id: int, name: str,
               principal: Principal, now: datetime, body: TaskStep) -> None:
    """A co-handler's own step: `accept` (签收) or `feedback` (反馈, with photos)."""
    check_role(principal, DISPATCHERS | {Role.DEPARTMENT_STAFF}, f"{name} co-handling tasks")
    async with conn.transaction():
        event = await lock_event(conn, event_id)
        task = await lock_task(conn, event_id, task_id)
        await _scoped(conn, principal, task["department_id"], f"task {task_id}")
        need = "assigned" if name == "accept" else "processing"
        if task["state"] != need:
            raise Conflict(f"task {task_id} is {task['state']}: {name} needs {need}")
        if name == "accept":
            await conn.execute("UPDATE event_tasks SET state = 'processing', accepted_at = %s,"
                               " updated_at = %s WHERE id = %s", (now, now, task_id))
            await _log(conn, event, "cohandler_accept", principal, now, body.note,
                       task["department_id"], task_id)
            return
        if not body.note.strip():
            raise InvalidInput("note: feedback says what was done")
        on_time = now <= task["deadline_at"]
        transition = await _log(conn, event, "cohandler_feedback", principal, now, body.note,
                                task["department_id"], task_id, on_time=on_time)
        await objects.link_to_transition(conn, event_id, transition, body.attachment_ids)
        await conn.execute(
            "UPDATE event_tasks SET state = 'done', done_at = %s, done_on_time = %s,"
            " feedback = %s, feedback_transition_id = %s, rating = NULL, updated_at = %s"
            " WHERE id = %s", (now, on_time, body.note, transition, now, task_id))


async def evaluate(conn: AsyncConnection, event_id: int, task_id: int, principal: Principal,
                   now: datetime, body: TaskStep) -> None:
    """The lead department (or the dispatcher) rates a co-handler's feedback; 'unsatisfied'
    sends the task back to processing (its clock keeps running: the deadline stays)."""
    check_role(principal, DISPATCHERS | {Role.DEPARTMENT_STAFF}, "evaluate co-handling tasks")
    if body.rating not in RATINGS:
        raise InvalidInput(f"rating: one of {', '.join(RATINGS)}, not {body.rating!r}")
    if body.rating == "unsatisfied" and not body.note.strip():
        raise InvalidInput("note: an unsatisfied rating says what is missing")
    async with conn.transaction():
        event = await lock_event(conn, event_id)
        task = await lock_task(conn, event_id, task_id)
        await _scoped(conn, principal, event["department_id"], f"event {event_id}'s lead")
        if task["state"] != "done" or task["rating"] is not None:
            raise Conflict(f"task {task_id} is {task['state']}"
                           f"{' and rated' if task['rating'] else ''}: only new feedback is"
                           " rated")
        back = body.rating == "unsatisfied"
        await conn.execute(
            "UPDATE event_tasks SET rating = %s, rating_note = %s, rated_by = %s, rated_at = %s,"
            " state = %s, rework_count = rework_count + %s, updated_at = %s WHERE id = %s",
            (body.rating, body.note, principal.name, now, "processing" if back else "done",
             int(back), now, task_id))
        await _log(conn, event, "cohandler_evaluate", principal, now, body.note,
                   task["department_id"], task_id, {"rating": body.rating})


async def open_tasks(conn: AsyncConnection, event_id: int) -> list[dict]:
    """The co-handling tasks that keep an event from closing."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT id, department_id, state FROM event_tasks WHERE event_id = %s"
                          " AND state IN ('assigned', 'processing') ORDER BY id", (event_id,))
        return await cur.fetchall()
