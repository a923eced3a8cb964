"""Side branches that need approval: 作废 cancel, 挂账 suspend, 延期 extend, 回退 return.

One role asks (with a reason), a dispatcher other than the asker (or an admin) approves or
refuses with a reason; approval performs the change. An event has at most one pending request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityevents import clock
from cityevents.calendar import UNITS, WorkCalendar
from cityevents.service import (
    check_role,
    check_scope,
    limits_for,
    lock_event,
    log_transition,
    next_clock,
    update_event,
)
from cityevents.workflow import APPROVER_ROLES, REQUESTS, State
from cityops.errors import Conflict, Forbidden, InvalidInput, NotFound
from cityops.principal import Principal, Role


@dataclass
class Ask:
    kind: str
    note: str
    amount: float | None = None
    unit: str | None = None


# The longest extension one request may ask for, per unit: 30 working days (a 延期 stretches a
# case's limit, it does not park it: 挂账 suspend is the way to stop its clock).
MAX_EXTENSION = {"work_days": 30, "work_hours": 30 * 8, "hours": 30 * 24}


def _check_extension(amount: float | None, unit: str | None) -> None:
    if unit not in UNITS:
        raise InvalidInput(f"an extension needs unit in {', '.join(UNITS)}, not {unit!r}")
    if not amount or amount <= 0 or amount > MAX_EXTENSION[unit]:
        raise InvalidInput(f"amount: an extension is more than 0 and at most "
                           f"{MAX_EXTENSION[unit]:g} {unit}, not {amount:g}" if amount else
                           "amount: an extension needs an amount more than 0")


async def ask(
    conn: AsyncConnection, event_id: int, principal: Principal, now: datetime, ask: Ask
) -> int:
    spec = REQUESTS[ask.kind]
    check_role(principal, spec.requester_roles, f"ask to {ask.kind}")
    if not ask.note.strip():
        raise InvalidInput(f"a {ask.kind} request needs a reason in note")
    if ask.kind == "extend":
        _check_extension(ask.amount, ask.unit)
    async with conn.transaction():
        event = await lock_event(conn, event_id)
        if State(event["state"]) not in spec.sources:
            allowed = ", ".join(sorted(s.value for s in spec.sources))
            raise Conflict(f"event {event_id} is {event['state']}: {ask.kind} needs {allowed}")
        if spec.department_scoped:
            await check_scope(conn, principal, event)
        cur = await conn.execute(
            "SELECT id, kind FROM event_requests WHERE event_id = %s AND state = 'pending'",
            (event_id,),
        )
        if pending := await cur.fetchone():
            raise Conflict(f"event {event_id} already has pending request {pending[0]}"
                           f" ({pending[1]})")
        cur = await conn.execute(
            "INSERT INTO event_requests (event_id, kind, requested_by, requested_role,"
            " requested_at, note, amount, unit) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id",
            (event_id, ask.kind, principal.name, principal.role.value, now, ask.note,
             ask.amount if ask.kind == "extend" else None,
             ask.unit if ask.kind == "extend" else None),
        )
        request_id = (await cur.fetchone())[0]
        await log_transition(conn, event_id, f"request_{ask.kind}", event["state"],
                             event["state"], principal, now, ask.note, event["department_id"],
                             detail={"request": request_id})
    return request_id


async def _lock_request(conn: AsyncConnection, event_id: int, request_id: int) -> dict:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT * FROM event_requests WHERE id = %s AND event_id = %s FOR UPDATE",
            (request_id, event_id),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"event {event_id} has no request {request_id}")
    return row


async def _apply(
    conn: AsyncConnection, cal: WorkCalendar, event: dict, request: dict, now: datetime
) -> tuple[State, dict, bool | None]:
    """The approved change: (new state, event columns, whether the ending step was on time)."""
    kind, state = request["kind"], State(event["state"])
    spec = REQUESTS[kind]
    if state not in spec.sources:
        raise Conflict(f"event {event['id']} is now {state.value}: the {kind} request no longer"
                       " applies; refuse it")
    if kind == "extend":
        return state, clock.extend(cal, event, float(request["amount"]), request["unit"]), None
    target = spec.target
    updates: dict = {"state": target}
    if kind == "suspend":
        updates["suspended_at"] = now
    elif kind == "return":
        updates["department_id"] = None  # wrong department: back to the dispatcher
    limits = await limits_for(conn, event["category_code"], event["urgency"])
    clocks, ended = next_clock(cal, limits, event, target, now)
    return target, updates | clocks, ended


async def decide(
    conn: AsyncConnection, cal: WorkCalendar, event_id: int, request_id: int,
    principal: Principal, now: datetime, approve: bool, note: str,
) -> None:
    check_role(principal, APPROVER_ROLES, "approve or refuse requests")
    if not approve and not note.strip():
        raise InvalidInput("refusing a request needs a reason in note")
    async with conn.transaction():
        event = await lock_event(conn, event_id)
        request = await _lock_request(conn, event_id, request_id)
        if request["state"] != "pending":
            raise Conflict(f"request {request_id} was already {request['state']}")
        if request["requested_by"] == principal.name and principal.role != Role.ADMIN:
            raise Forbidden("a request is decided by someone other than who asked")
        kind = request["kind"]
        state, updates, ended = State(event["state"]), {}, None
        if approve:
            state, updates, ended = await _apply(conn, cal, event, request, now)
        await conn.execute(
            "UPDATE event_requests SET state = %s, decided_by = %s, decided_at = %s,"
            " decision_note = %s WHERE id = %s",
            ("approved" if approve else "refused", principal.name, now, note, request_id),
        )
        # approved: the action's own name (cancel, suspend, extend, return); else refuse_<kind>
        action = kind if approve else f"refuse_{kind}"
        await log_transition(
            conn, event_id, action, event["state"], state, principal, now, note,
            event["department_id"], ended,
            detail={"request": request_id, "requested_by": request["requested_by"],
                    "reason": request["note"]},
        )
        if updates:
            await update_event(conn, event_id, updates, now)
