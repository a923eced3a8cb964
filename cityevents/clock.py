"""The two clocks of an event: the current step's and the whole event's.

Each clock is (unit, limit_s, deadline). A limit in working units is counted in working seconds
on the working calendar, an 'hours' limit in real seconds. Used time is limit - what is left
until the deadline, so moving the deadline (suspension, extension) is all the bookkeeping
needed. While suspended (挂账) the clocks stand still; on resume both deadlines move forward by
the working time the suspension lasted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cityevents.calendar import WorkCalendar, traffic_light

Limits = dict[str, tuple[float, str]]  # step -> (amount, unit)


@dataclass(frozen=True)
class ClockView:
    step_light: str | None
    total_light: str | None
    step_used_share: float | None
    total_used_share: float | None

    @property
    def light(self) -> str | None:
        """The worse of the two lights."""
        order = {"green": 0, "yellow": 1, "red": 2}
        lights = [x for x in (self.step_light, self.total_light) if x]
        return max(lights, key=order.__getitem__) if lights else None


def start_step(cal: WorkCalendar, limits: Limits, step: str | None, now: datetime) -> dict:
    """The event columns of a step clock starting now (no limit configured: no clock)."""
    if step is None or step not in limits:
        return {"step": step, "step_unit": None, "step_limit_s": None,
                "step_started_at": now, "step_deadline_at": None}
    amount, unit = limits[step]
    limit_s = cal.limit_seconds(amount, unit)
    return {"step": step, "step_unit": unit, "step_limit_s": limit_s, "step_started_at": now,
            "step_deadline_at": cal.deadline(now, limit_s, unit)}


def start_total(cal: WorkCalendar, limits: Limits, reported_at: datetime) -> dict:
    if "total" not in limits:
        return {"total_unit": None, "total_limit_s": None, "total_deadline_at": None}
    amount, unit = limits["total"]
    limit_s = cal.limit_seconds(amount, unit)
    return {"total_unit": unit, "total_limit_s": limit_s,
            "total_deadline_at": cal.deadline(reported_at, limit_s, unit)}


def resume(cal: WorkCalendar, event: dict, now: datetime) -> dict:
    """Move both deadlines by the time the suspension used on each clock's own unit."""
    since = event["suspended_at"]
    updates: dict = {"suspended_at": None}
    for clock in ("step", "total"):
        deadline, unit = event[f"{clock}_deadline_at"], event[f"{clock}_unit"]
        if deadline is not None:
            paused = cal.seconds_between(since, now, unit)
            updates[f"{clock}_deadline_at"] = cal.deadline(deadline, paused, unit)
    return updates


def extend(cal: WorkCalendar, event: dict, amount: float, unit: str) -> dict:
    """An approved extension (延期) moves the step and total deadlines and grows their limits."""
    updates: dict = {}
    extra_s = cal.limit_seconds(amount, unit)
    for clock in ("step", "total"):
        deadline, own_unit = event[f"{clock}_deadline_at"], event[f"{clock}_unit"]
        if deadline is None:
            continue
        moved = cal.deadline(deadline, extra_s, unit)
        updates[f"{clock}_deadline_at"] = moved
        # the limit grows by the extension measured in this clock's own unit
        grown = cal.seconds_between(deadline, moved, own_unit)
        updates[f"{clock}_limit_s"] = event[f"{clock}_limit_s"] + grown
    return updates


def on_time(deadline: datetime | None, now: datetime) -> bool | None:
    return None if deadline is None else now <= deadline


def _share(cal: WorkCalendar, event: dict, clock: str, now: datetime) -> float | None:
    deadline, unit = event.get(f"{clock}_deadline_at"), event.get(f"{clock}_unit")
    limit_s = event.get(f"{clock}_limit_s")
    if deadline is None or not limit_s:
        return None
    at = event.get("suspended_at") or now  # a suspended clock stands still
    used = limit_s - cal.seconds_between(at, deadline, unit)
    return used / limit_s


def view(cal: WorkCalendar, event: dict, now: datetime) -> ClockView:
    """The traffic lights of an open event (terminal events have none)."""
    if event["state"] in ("closed", "cancelled"):
        return ClockView(None, None, None, None)
    step = _share(cal, event, "step", now)
    total = _share(cal, event, "total", now)
    return ClockView(
        None if step is None else traffic_light(step, 1.0),
        None if total is None else traffic_light(total, 1.0),
        step, total,
    )
