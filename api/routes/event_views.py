"""Shaping event rows for the API: the clock view and the evaluation rates."""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Annotated

from fastapi import Depends

from api.deps import get_settings
from api.schemas.events import Clock, Evaluation, EventDetail, EventOut
from cityevents import clock
from cityevents.calendar import WorkCalendar, now_utc
from cityevents.task_views import co_light, worst
from cityops.settings import Settings


@lru_cache(maxsize=8)
def _calendar(holidays: tuple[date, ...], workdays: tuple[date, ...]) -> WorkCalendar:
    return WorkCalendar(holidays, workdays)


def work_calendar(settings: Annotated[Settings, Depends(get_settings)]) -> WorkCalendar:
    """One calendar per configuration, so the unknown-year warning is logged once."""
    return _calendar(tuple(settings.calendar_extra_holidays),
                     tuple(settings.calendar_extra_workdays))


Calendar = Annotated[WorkCalendar, Depends(work_calendar)]
Now = Annotated[datetime, Depends(now_utc)]


def event_out(row: dict, cal: WorkCalendar, now: datetime) -> EventOut:
    seen = clock.view(cal, row, now)
    # co-handling tasks (协办) run their own clocks: the event shows the worst light
    tasks_light = (co_light(cal, row.get("co_clocks"), row.get("suspended_at") or now)
                   if row["state"] not in ("closed", "cancelled") else None)
    lights = Clock(
        step=row["step"], step_deadline_at=row["step_deadline_at"],
        step_light=seen.step_light, step_used_share=_round(seen.step_used_share),
        total_deadline_at=row["total_deadline_at"], total_light=seen.total_light,
        total_used_share=_round(seen.total_used_share), tasks_light=tasks_light,
        light=worst(seen.light, tasks_light),
    )
    return EventOut.model_validate({**row, "clock": lights})


def event_detail(
    row: dict, cal: WorkCalendar, now: datetime, transitions: list[dict], requests: list[dict],
    attachments: list[dict],
) -> EventDetail:
    base = event_out(row, cal, now).model_dump()
    return EventDetail.model_validate(
        {**base, "transitions": transitions, "requests": requests, "attachments": attachments}
    )


def _round(share: float | None) -> float | None:
    return None if share is None else round(share, 4)


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def evaluation_out(row: dict) -> Evaluation:
    """The rates of docs/city-operations.md "Evaluation" from the counts."""
    due = row["due"]
    return Evaluation(
        **row,
        closure_rate=_rate(row["closed"], due),
        on_time_closure_rate=_rate(row["closed_on_time"], due),
        disposal_rate=_rate(row["disposed"], due),
        on_time_disposal_rate=_rate(row["disposed_on_time"], due),
        rework_rate=_rate(row["reworked"], due),
        accurate_dispatch_rate=_rate(row["accurate_dispatches"], row["dispatched"]),
        co_on_time_disposal_rate=_rate(row["co_disposed_on_time"], row["co_due"]),
        all_on_time_disposal_rate=_rate(row["disposed_on_time"] + row["co_disposed_on_time"],
                                        due + row["co_due"]),
    )
