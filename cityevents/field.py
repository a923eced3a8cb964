"""城管通, the field side of the event loop (issue 18 item 4): what an inspector (监督员) and a
department worker see and do from a phone.

- An inspector's report may carry an idempotency key: a phone that lost the answer sends the
  same report again with the same key and gets the first event back, never a second one.
- An inspector's own reports, and the events waiting for an on-site check (核查): the
  监督中心's `check` step puts an event in `checking`; the inspector records pass or fail with
  a note and photos (`site_check`); the dispatcher then closes it or sends it back (返工).
- A department worker's work: the events their department leads in `dispatched` or
  `processing`, and the co-handling tasks (协办) their department holds open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityevents import queries as q
from cityevents import service
from cityevents.calendar import WorkCalendar
from cityevents.workflow import SITE_CHECK_ROLES, State
from cityops.errors import Conflict, InvalidInput
from cityops.principal import Principal
from datafoundation.catalogue import objects

RESULTS = ("pass", "fail")  # 核查通过 / 核查不通过


@dataclass
class SiteCheck:
    result: str
    note: str
    attachment_ids: list[int] = field(default_factory=list)


async def report_once(conn: AsyncConnection, cal: WorkCalendar, new: service.NewEvent,
                      principal: Principal, now: datetime, key: str | None) -> tuple[int, bool]:
    """(event id, whether it was created now). The same caller and key give the same event:
    an advisory lock on the pair makes a double tap wait for the first request's answer."""
    if key is None:
        return await service.create(conn, cal, new, principal, now), True
    if not 8 <= len(key) <= 64 or not key.isascii() or not key.isprintable():
        raise InvalidInput("Idempotency-Key: 8 to 64 printable ASCII characters")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 18))",
                           (f"{principal.name}\n{key}",))
        cur = await conn.execute("SELECT event_id FROM event_report_keys"
                                 " WHERE reporter = %s AND key = %s", (principal.name, key))
        if row := await cur.fetchone():
            return row[0], False
        event_id = await service.create(conn, cal, new, principal, now)
        await conn.execute("INSERT INTO event_report_keys (reporter, key, event_id)"
                           " VALUES (%s, %s, %s)", (principal.name, key, event_id))
    return event_id, True


async def my_reports(conn: AsyncConnection, principal: Principal, limit: int) -> list[dict]:
    """The caller's own reports, newest first (the rows q.listing gives)."""
    return await q.listing(conn, {"reporter": principal.name}, None, None, limit, 0)


# the events in `checking` with no site check since the event entered it this time
_WAITING = (
    "SELECT e.id FROM events e WHERE e.state = 'checking' AND NOT EXISTS ("
    " SELECT 1 FROM event_transitions s WHERE s.event_id = e.id AND s.action = 'site_check'"
    " AND s.id > (SELECT max(c.id) FROM event_transitions c WHERE c.event_id = e.id"
    " AND c.action = 'check')) ORDER BY e.id DESC LIMIT %s"
)


async def checks_waiting(conn: AsyncConnection, limit: int) -> list[dict]:
    cur = await conn.execute(_WAITING, (limit,))
    return [await q.get(conn, event_id) for (event_id,) in await cur.fetchall()]


async def site_check(conn: AsyncConnection, event_id: int, principal: Principal,
                     now: datetime, body: SiteCheck) -> int:
    """Record an inspector's on-site check of a closure: once per round of `checking`."""
    service.check_role(principal, SITE_CHECK_ROLES, "check closures on site")
    if body.result not in RESULTS:
        raise InvalidInput(f"result: one of {', '.join(RESULTS)}, not {body.result!r}")
    if not body.note.strip():
        raise InvalidInput("note: say what was found on site")
    if not body.attachment_ids:
        raise InvalidInput("attachment_ids: an on-site check needs at least one photo")
    async with conn.transaction():
        event = await service.lock_event(conn, event_id)
        if event["state"] != State.CHECKING:
            raise Conflict(f"event {event_id} is {event['state']}: an on-site check needs"
                           " checking (the 监督中心 sends it)")
        cur = await conn.execute(
            "SELECT 1 FROM event_transitions s WHERE s.event_id = %(e)s AND s.action ="
            " 'site_check' AND s.id > (SELECT max(id) FROM event_transitions WHERE event_id ="
            " %(e)s AND action = 'check')", {"e": event_id})
        if await cur.fetchone():
            raise Conflict(f"event {event_id} was already checked on site this round")
        transition = await service.log_transition(
            conn, event_id, "site_check", event["state"], event["state"], principal, now,
            body.note, event["department_id"], detail={"result": body.result})
        await objects.link_to_transition(conn, event_id, transition, body.attachment_ids)
        await service.update_event(conn, event_id, {}, now)  # updated_at: the case moved
    return transition


_LEAD = (
    "SELECT e.id AS event_id, NULL::bigint AS task_id, 'lead' AS part, e.state AS task_state,"
    " '' AS instructions, e.step_deadline_at AS deadline_at FROM events e"
    " WHERE e.state IN ('dispatched', 'processing')"
    " AND (%(all)s OR e.department_id = ANY(%(deps)s))"
)
_CO = (
    "SELECT t.event_id, t.id, 'co', t.state, t.instructions, t.deadline_at FROM event_tasks t"
    " JOIN events e ON e.id = t.event_id WHERE t.state IN ('assigned', 'processing')"
    " AND e.state NOT IN ('closed', 'cancelled')"
    " AND (%(all)s OR t.department_id = ANY(%(deps)s))"
)


async def worker_tasks(conn: AsyncConnection, principal: Principal, limit: int) -> list[dict]:
    """The open work of the caller's departments (a department_staff user's own, an API key's
    list), the earliest deadline first; every department's for the county-wide roles."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"{_LEAD} UNION ALL {_CO} ORDER BY deadline_at NULLS LAST, event_id"
                          " LIMIT %(limit)s", {"all": principal.departments is None,
                           "deps": sorted(principal.departments or ()), "limit": limit})
        rows = await cur.fetchall()
    return [row | {"event": await q.get(conn, row["event_id"])} for row in rows]
