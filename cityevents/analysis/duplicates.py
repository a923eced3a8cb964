"""Merge suggestions decided: the same problem reported twice becomes one case.

The suggestions are made at intake (cityevents/analysis/intake.py). The dispatcher accepts
one (the new report is closed as merged into the open event, its reporter and description
kept in the open event's history) or refuses it; nothing is merged unasked.
"""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityevents.service import check_role, lock_event, log_transition, update_event
from cityevents.workflow import APPROVER_ROLES, TERMINAL, State
from cityops.errors import Conflict, NotFound
from cityops.principal import Principal

# states in which a report may still be merged away: before it was dispatched to anyone
MERGEABLE = frozenset({State.REPORTED, State.VERIFYING, State.REGISTERED})


async def pending(conn: AsyncConnection, event_id: int | None = None) -> list[dict]:
    cur = await conn.cursor(row_factory=dict_row).execute(
        "SELECT s.id, s.event_id, s.duplicate_of, s.distance_m, s.hours_apart, s.state,"
        " s.created_at, n.category_code, n.description, o.description AS duplicate_description"
        " FROM event_merge_suggestions s JOIN events n ON n.id = s.event_id"
        " JOIN events o ON o.id = s.duplicate_of"
        " WHERE s.state = 'pending' AND (%(id)s::bigint IS NULL OR s.event_id = %(id)s)"
        " ORDER BY s.created_at DESC, s.id LIMIT 500", {"id": event_id})
    return await cur.fetchall()


async def _suggestion(conn: AsyncConnection, suggestion_id: int) -> dict:
    cur = await conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM event_merge_suggestions WHERE id = %s FOR UPDATE", (suggestion_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"merge suggestion {suggestion_id} does not exist")
    if row["state"] != "pending":
        raise Conflict(f"merge suggestion {suggestion_id} was already {row['state']}")
    return row


async def decide(conn: AsyncConnection, suggestion_id: int, accept: bool,
                 principal: Principal, now: datetime) -> dict:
    """Accept (merge the new report into the open event) or refuse a suggestion."""
    check_role(principal, APPROVER_ROLES, "decide merge suggestions")
    async with conn.transaction():
        row = await _suggestion(conn, suggestion_id)
        if not accept:
            return await _close(conn, row, "refused", principal, now)
        # the older event first, as every merge does: two merges never wait on each other
        target = await lock_event(conn, row["duplicate_of"])
        new = await lock_event(conn, row["event_id"])
        if new["state"] not in MERGEABLE:
            raise Conflict(f"event {new['id']} is {new['state']}: only a report not yet"
                           " dispatched can be merged")
        if target["state"] in TERMINAL or target["merged_into"] is not None:
            raise Conflict(f"event {target['id']} is {target['state']}: merge into an open event")
        await update_event(conn, new["id"], {"state": State.CANCELLED, "closed_at": now,
                                             "merged_into": target["id"]}, now)
        await log_transition(conn, new["id"], "merge", new["state"], State.CANCELLED, principal,
                             now, note=f"并入事件 #{target['id']}",
                             detail={"merged_into": target["id"]})
        await log_transition(conn, target["id"], "merged", target["state"], target["state"],
                             principal, now, note=f"合并重复上报 #{new['id']}",
                             detail={"merged": new["id"], "reporter": new["reporter"],
                                     "description": new["description"]})
        # other suggestions about the merged report have nothing left to decide
        await conn.execute("UPDATE event_merge_suggestions SET state = 'obsolete'"
                           " WHERE event_id = %s AND id <> %s AND state = 'pending'",
                           (new["id"], suggestion_id))
        return await _close(conn, row, "accepted", principal, now)


async def _close(conn: AsyncConnection, row: dict, state: str, principal: Principal,
                 now: datetime) -> dict:
    await conn.execute("UPDATE event_merge_suggestions SET state = %s, decided_at = %s,"
                       " decided_by = %s WHERE id = %s", (state, now, principal.name, row["id"]))
    return {**row, "state": state, "decided_at": now, "decided_by": principal.name}
