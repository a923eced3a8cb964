"""Reading an event's tasks: the lead's (主办, the event's own dispose step) and each
co-handler's (协办, event_tasks), each with its light and time left on the working calendar.

An event's light is the worst of its own clocks and its open co-handling tasks' lights
(`worst`), so a co-handler running late shows on the case board and is supervised."""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityevents import clock
from cityevents.calendar import WorkCalendar, traffic_light

_ORDER = {"green": 0, "yellow": 1, "red": 2}
# the lead task's state from the event's state (the lead works the event's own workflow)
_LEAD_STATE = {"dispatched": "assigned", "processing": "processing", "suspended": "suspended",
               "feedback": "done", "checking": "done", "closed": "done"}


def worst(*lights: str | None) -> str | None:
    known = [x for x in lights if x]
    return max(known, key=_ORDER.__getitem__) if known else None


def task_clock(cal: WorkCalendar, task: dict, now: datetime) -> dict:
    """light, used share and time left (seconds of the task's unit) of an open task; `now` is
    the suspension's start while the event is suspended (the clock stands still)."""
    if task["state"] not in ("assigned", "processing"):
        return {"light": None, "used_share": None, "left_s": None}
    left = cal.seconds_between(now, task["deadline_at"], task["unit"])
    used = task["limit_s"] - left
    return {"light": traffic_light(used, task["limit_s"]),
            "used_share": round(used / task["limit_s"], 4), "left_s": round(left)}


def lead_task(cal: WorkCalendar, event: dict, now: datetime, feedback: dict | None) -> dict | None:
    """The lead's task as the event's dispose step shows it; None before dispatch."""
    if event["department_id"] is None or event["state"] not in _LEAD_STATE:
        return None
    running = event["step"] == "dispose" and event["step_deadline_at"] is not None
    view = clock.view(cal, event, now)
    at = event.get("suspended_at") or now
    left = (cal.seconds_between(at, event["step_deadline_at"], event["step_unit"])
            if running else None)
    return {
        "id": None, "role": "lead", "department_id": event["department_id"],
        "state": _LEAD_STATE[event["state"]], "instructions": "",
        "unit": event["step_unit"] if running else None,
        "deadline_at": event["step_deadline_at"] if running else None,
        "light": view.step_light if running else None,
        "used_share": None if not running else round(view.step_used_share, 4),
        "left_s": None if left is None else round(left),
        "done_at": event["disposed_at"], "done_on_time": event["disposed_on_time"],
        "feedback": (feedback or {}).get("note", ""),
        "attachment_ids": (feedback or {}).get("attachment_ids", []),
        "rating": None, "rating_note": "", "rework_count": event["rework_count"],
        "reminders": 0,
    }


_TASKS = """
SELECT t.*, coalesce(array_agg(o.id ORDER BY o.id) FILTER (WHERE o.id IS NOT NULL), '{}')
       AS attachment_ids,
       (SELECT count(*) FROM event_reminders r WHERE r.task_id = t.id)::int AS reminders
FROM event_tasks t LEFT JOIN objects o ON o.transition_id = t.feedback_transition_id
WHERE t.event_id = %s GROUP BY t.id ORDER BY t.id"""

_LEAD_FEEDBACK = """
SELECT t.note, coalesce(array_agg(o.id ORDER BY o.id) FILTER (WHERE o.id IS NOT NULL), '{}')
       AS attachment_ids,
       (SELECT count(*) FROM event_reminders r WHERE r.event_id = %(id)s AND r.task_id IS NULL
        )::int AS reminders
FROM (SELECT 1) one
LEFT JOIN LATERAL (SELECT id, note FROM event_transitions WHERE event_id = %(id)s
                   AND action = 'feedback' ORDER BY id DESC LIMIT 1) t ON true
LEFT JOIN objects o ON o.transition_id = t.id GROUP BY t.note"""


async def tasks_of(conn: AsyncConnection, cal: WorkCalendar, event: dict, now: datetime
                   ) -> list[dict]:
    """The lead's task first, then the co-handlers' in the order they were added."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_LEAD_FEEDBACK, {"id": event["id"]})
        feedback = await cur.fetchone()
        await cur.execute(_TASKS, (event["id"],))
        rows = await cur.fetchall()
    out = []
    lead = lead_task(cal, event, now, feedback if feedback["note"] is not None else None)
    if lead is not None:
        out.append(lead | {"reminders": feedback["reminders"]})
    at = event.get("suspended_at") or now  # 挂账: the tasks' clocks stand still too
    for row in rows:
        out.append({**row, "role": "co", **task_clock(cal, row, at)})
    return out


def co_light(cal: WorkCalendar, open_tasks: list[dict] | None, now: datetime) -> str | None:
    """The worst light of an event's open co-handling tasks (rows with state, unit, limit_s,
    deadline_at: cityevents/queries.py adds them to every event it reads)."""
    lights = []
    for t in open_tasks or ():
        deadline = t["deadline_at"]  # JSON from the query: an ISO 8601 string
        if isinstance(deadline, str):
            t = t | {"deadline_at": datetime.fromisoformat(deadline)}
        lights.append(task_clock(cal, t, now)["light"])
    return worst(*lights)
