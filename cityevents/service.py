"""Writes of the event workflow: report, step transitions and supervision.

Every change locks the event row (SELECT ... FOR UPDATE), checks the action against the state
and the caller, updates the clocks and appends one transition row, in one transaction, so two
people acting on one event at once see one of them win and the other get 409.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import orjson
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from cityevents import clock
from cityevents.analysis import intake
from cityevents.calendar import WorkCalendar
from cityevents.workflow import (
    ACTIONS,
    REPORTER_ROLES,
    STEP_OF_STATE,
    SUPERVISE_ROLES,
    TERMINAL,
    State,
)
from cityops.errors import Conflict, Forbidden, InvalidInput, NotFound
from cityops.principal import Principal, Role
from datafoundation.catalogue import objects

SYSTEM = Principal("system", Role.ADMIN, kind="system")


@dataclass
class NewEvent:
    channel: str
    category_code: str
    description: str
    urgency: str = "normal"
    address: str = ""
    grid: str = ""
    latitude: float | None = None
    longitude: float | None = None
    external_ref: str | None = None
    alarm_group: str | None = None
    reporter: str | None = None  # who reported it, when not the caller (hotline petitioner)
    media_url: str | None = None  # a photo the reporter links to (Open311 media_url)


@dataclass
class Step:
    note: str = ""
    department_id: str | None = None
    attachment_ids: list[int] = field(default_factory=list)


async def lock_event(conn: AsyncConnection, event_id: int) -> dict:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM events WHERE id = %s FOR UPDATE", (event_id,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"event {event_id} does not exist")
    return row


async def limits_for(conn: AsyncConnection, category: str, urgency: str) -> clock.Limits:
    """The time limits of a category x urgency; the category's own rows beat the defaults."""
    cur = await conn.execute(
        "SELECT step, amount, unit FROM event_time_limits"
        " WHERE urgency = %s AND category_code IN (%s, '*')"
        " ORDER BY (category_code = '*') DESC",
        (urgency, category),
    )
    return {step: (float(amount), unit) for step, amount, unit in await cur.fetchall()}


async def update_event(conn: AsyncConnection, event_id: int, updates: dict, now: datetime):
    updates = {**updates, "updated_at": now}
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in updates
    )
    query = sql.SQL("UPDATE events SET {} WHERE id = {}").format(assignments, sql.Literal(event_id))
    await conn.execute(query, {k: (v.value if isinstance(v, State) else v)
                               for k, v in updates.items()})


async def log_transition(
    conn: AsyncConnection, event_id: int, action: str, from_state: str | None, to_state: str,
    actor: Principal, now: datetime, note: str = "", department_id: str | None = None,
    on_time: bool | None = None, detail: dict | None = None,
) -> int:
    cur = await conn.execute(
        "INSERT INTO event_transitions (event_id, action, from_state, to_state, actor,"
        " actor_role, at, note, department_id, on_time, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (event_id, action, from_state, str(to_state), actor.name,
         actor.kind if actor.kind == "system" else actor.role.value, now, note, department_id,
         on_time, orjson.dumps(detail or {}).decode()),
    )
    return (await cur.fetchone())[0]


async def department_of(conn: AsyncConnection, principal: Principal) -> str | None:
    cur = await conn.execute(
        "SELECT department_id FROM users WHERE username = %s", (principal.name,)
    )
    row = await cur.fetchone()
    return row[0] if row else None


async def check_scope(conn: AsyncConnection, principal: Principal, event: dict) -> None:
    """Department staff act only on events dispatched to their own department."""
    if principal.role != Role.DEPARTMENT_STAFF:
        return
    mine = await department_of(conn, principal)
    if mine is None or mine != event["department_id"]:
        raise Forbidden(
            f"event {event['id']} is handled by department {event['department_id']!r},"
            f" not yours ({mine!r})"
        )


def check_role(principal: Principal, roles: frozenset[Role], what: str) -> None:
    if principal.role not in roles:
        names = ", ".join(sorted(r.value for r in roles))
        raise Forbidden(f"role {principal.role.value} may not {what} (allowed: {names})")


async def create(
    conn: AsyncConnection, cal: WorkCalendar, new: NewEvent, principal: Principal, now: datetime
) -> int:
    """Report an event; an alarm group that already has an open event returns that one."""
    check_role(principal, REPORTER_ROLES | {Role.ADMIN}, "report events")
    cur = await conn.execute("SELECT 1 FROM event_categories WHERE code = %s",
                             (new.category_code,))
    if await cur.fetchone() is None:
        raise InvalidInput(f"category {new.category_code!r} is not in the event categories")
    limits = await limits_for(conn, new.category_code, new.urgency)
    clocks = clock.start_step(cal, limits, "accept", now) | clock.start_total(cal, limits, now)
    columns = {
        "channel": new.channel, "reporter": new.reporter or principal.name,
        "category_code": new.category_code, "urgency": new.urgency,
        "description": new.description, "address": new.address, "grid": new.grid,
        "latitude": new.latitude, "longitude": new.longitude,
        "external_ref": new.external_ref, "alarm_group": new.alarm_group,
        "reported_at": now, "updated_at": now, **clocks,
    }
    query = sql.SQL(
        "INSERT INTO events ({}) VALUES ({}) ON CONFLICT (alarm_group) WHERE alarm_group IS NOT"
        " NULL AND state NOT IN ('closed', 'cancelled') DO NOTHING RETURNING id"
    ).format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(map(sql.Placeholder, columns)),
    )
    async with conn.transaction():
        cur = await conn.execute(query, columns)
        row = await cur.fetchone()
        if row is None:  # the alarm group's open event already exists
            cur = await conn.execute(
                "SELECT id FROM events WHERE alarm_group = %s"
                " AND state NOT IN ('closed', 'cancelled')", (new.alarm_group,),
            )
            return (await cur.fetchone())[0]
        await log_transition(conn, row[0], "report", None, State.REPORTED, principal, now,
                             note=new.description,
                             detail={"channel": new.channel, "media_url": new.media_url})
        await intake.suggest(conn, row[0], now)  # a duplicate report: offered for merging
    return row[0]


def next_clock(
    cal: WorkCalendar, limits: clock.Limits, event: dict, target: State, now: datetime
) -> tuple[dict, bool | None]:
    """The step-clock columns after moving to target, and whether the step that ends was on
    time (None when no step ends)."""
    ended = clock.on_time(event["step_deadline_at"], now)
    if target in TERMINAL:
        return {"step": None, "step_unit": None, "step_limit_s": None,
                "step_deadline_at": None}, ended
    step = STEP_OF_STATE.get(target)
    if target == State.SUSPENDED or step == event["step"]:
        return {}, None  # the same step goes on (dispatched -> processing, resume)
    return clock.start_step(cal, limits, step, now), ended


async def _dispatch_target(conn: AsyncConnection, event: dict, department: str | None) -> str:
    # the department whose responsibility area holds the event's point (migration 081)
    # comes before the category's default: it is the one the map offers the dispatcher
    if department is None:
        department = event.get("area_department_id")
    if department is None:
        cur = await conn.execute("SELECT department_id FROM event_categories WHERE code = %s",
                                 (event["category_code"],))
        department = (await cur.fetchone())[0]
    if department is None:
        raise InvalidInput("dispatch needs department_id: the category names no default")
    cur = await conn.execute("SELECT 1 FROM departments WHERE id = %s", (department,))
    if await cur.fetchone() is None:
        raise InvalidInput(f"department {department!r} is not registered")
    cur = await conn.execute("SELECT id FROM event_tasks WHERE event_id = %s AND department_id"
                             " = %s AND state <> 'released'", (event["id"], department))
    if task := await cur.fetchone():  # after a 回退: the lead is not also its own co-handler
        raise Conflict(f"department_id: {department!r} co-handles event {event['id']} (task"
                       f" {task[0]}); release that task before making it the lead")
    return department


async def _check_cohandlers_finished(conn: AsyncConnection, event_id: int) -> None:
    """An event closes only when every co-handling task (协办, cityevents/tasks.py) is done
    or released."""
    cur = await conn.execute(
        "SELECT string_agg(id || ' (' || department_id || ', ' || state || ')', ', ' ORDER BY id)"
        " FROM event_tasks WHERE event_id = %s AND state IN ('assigned', 'processing')",
        (event_id,))
    waiting = (await cur.fetchone())[0]
    if waiting:
        raise Conflict(f"event {event_id} has co-handling tasks not done: {waiting}; wait for"
                       " their feedback or release them")


async def _resume_cohandlers(conn: AsyncConnection, cal: WorkCalendar, event: dict,
                             now: datetime) -> None:
    """挂账 stops the co-handling tasks' clocks too: on resume each open task's deadline moves
    by the time the suspension lasted in the task's own unit."""
    cur = await conn.execute("SELECT id, unit, deadline_at FROM event_tasks WHERE event_id = %s"
                             " AND state IN ('assigned', 'processing')", (event["id"],))
    for task_id, unit, deadline in await cur.fetchall():
        paused = cal.seconds_between(event["suspended_at"], now, unit)
        await conn.execute("UPDATE event_tasks SET deadline_at = %s, updated_at = %s"
                           " WHERE id = %s", (cal.deadline(deadline, paused, unit), now, task_id))


async def act(
    conn: AsyncConnection, cal: WorkCalendar, event_id: int, name: str, principal: Principal,
    now: datetime, step: Step,
) -> None:
    """Take one workflow step (verify, register, dispatch, accept, feedback, ...)."""
    action = ACTIONS[name]
    check_role(principal, action.roles, name)
    async with conn.transaction():
        event = await lock_event(conn, event_id)
        state = State(event["state"])
        if state not in action.sources:
            allowed = ", ".join(sorted(s.value for s in action.sources))
            raise Conflict(f"event {event_id} is {state.value}: {name} needs {allowed}")
        if action.department_scoped:
            await check_scope(conn, principal, event)
        updates: dict = {"state": action.target}
        if name == "dispatch":
            updates["department_id"] = await _dispatch_target(conn, event, step.department_id)
        elif name == "feedback":
            updates |= {"disposed_at": now,
                        "disposed_on_time": clock.on_time(event["step_deadline_at"], now)}
        elif name == "close":
            await _check_cohandlers_finished(conn, event_id)
            updates |= {"closed_at": now,
                        "closed_on_time": clock.on_time(event["total_deadline_at"], now)}
        elif name == "rework":
            updates["rework_count"] = event["rework_count"] + 1
        elif name == "resume":
            updates |= clock.resume(cal, event, now)
            await _resume_cohandlers(conn, cal, event, now)
        limits = await limits_for(conn, event["category_code"], event["urgency"])
        clocks, ended_on_time = next_clock(cal, limits, event | updates, action.target, now)
        department = updates.get("department_id", event["department_id"])
        transition = await log_transition(
            conn, event_id, name, state, action.target, principal, now, step.note,
            department, ended_on_time,
        )
        await objects.link_to_transition(conn, event_id, transition, step.attachment_ids)
        await update_event(conn, event_id, updates | clocks, now)


async def supervise(
    conn: AsyncConnection, event_id: int, principal: Principal, now: datetime, note: str
) -> None:
    """督办: a flag on an open event with who, when and why; repeated notes are kept."""
    if principal.kind != "system":
        check_role(principal, SUPERVISE_ROLES, "supervise events")
    async with conn.transaction():
        event = await lock_event(conn, event_id)
        if event["state"] in TERMINAL:
            raise Conflict(f"event {event_id} is {event['state']}: nothing to supervise")
        await log_transition(conn, event_id, "supervise", event["state"], event["state"],
                             principal, now, note, event["department_id"])
        await update_event(conn, event_id, {"supervised": True}, now)


async def sweep(conn: AsyncConnection, cal: WorkCalendar, now: datetime) -> list[int]:
    """Raise supervision on every open event whose light turned red; returns their ids."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT * FROM events WHERE state NOT IN ('closed', 'cancelled', 'suspended')"
            " AND NOT supervised AND (step_deadline_at < %(now)s OR total_deadline_at < %(now)s)"
            " ORDER BY id",
            {"now": now},
        )
        candidates = await cur.fetchall()
    raised = []
    for event in candidates:
        if clock.view(cal, event, now).light == "red":
            await supervise(conn, event["id"], SYSTEM, now, "time limit exceeded (red light)")
            raised.append(event["id"])
    return raised
