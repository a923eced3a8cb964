"""Event analysis (从管到防): hot spots, recurring problems, forecasts, department performance,
and the dispatcher's merge suggestions. The figures are county-wide; the analysis itself is in
cityevents/analysis/."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from api.deps import Conn, get_principal, require
from api.routes.event_views import Now
from api.schemas.analysis import (
    AccuracyOut,
    DepartmentWeekOut,
    ForecastOut,
    HotspotOut,
    MergeSuggestionOut,
    RecurringOut,
)
from cityevents.analysis import duplicates, forecast, hotspots, performance, recurring
from cityops.principal import Principal, Role

router = APIRouter(tags=["analysis"])
READERS = [Depends(require(Role.DISPATCHER, Role.OPERATOR, Role.VIEWER, Role.DATA_ADMIN))]
DECIDERS = [Depends(require(Role.DISPATCHER))]
Caller = Annotated[Principal, Depends(get_principal)]
SuggestionId = Annotated[int, Path(ge=1)]
Category = Annotated[str | None, Query(max_length=32, description="one category; all if absent")]


def _until(until: datetime | None, now: datetime) -> datetime:
    return until or now


@router.get("/v1/analysis/hotspots", response_model=list[HotspotOut], dependencies=READERS)
async def get_hotspots(
    conn: Conn, now: Now, by: Literal["grid", "community", "town"] = "grid",
    period_days: Annotated[int, Query(ge=1, le=92)] = 7,
    history_periods: Annotated[int, Query(ge=1, le=52)] = 8,
    alpha: Annotated[float, Query(gt=0, le=0.2)] = 0.05,
    min_count: Annotated[int, Query(ge=2, le=1000)] = 3,
    category: Category = None, until: datetime | None = None,
) -> list[dict]:
    """(area, category) pairs with significantly more events this period than their own past
    (Poisson, Benjamini-Hochberg at `alpha`)."""
    return await hotspots.find(conn, by=by, until=_until(until, now), period_days=period_days,
                               periods=history_periods, category=category, alpha=alpha,
                               min_count=min_count)


@router.get("/v1/analysis/recurring", response_model=list[RecurringOut], dependencies=READERS)
async def get_recurring(
    conn: Conn, now: Now, days: Annotated[int, Query(ge=1, le=366)] = 30,
    radius_m: Annotated[float, Query(ge=1, le=5000)] = 100,
    min_events: Annotated[int, Query(ge=2, le=1000)] = 3,
    category: Category = None, until: datetime | None = None,
) -> list[dict]:
    """高发问题: the same category at the same place (within radius_m) at least min_events
    times in the last `days` days, with the weekly counts and their trend."""
    return await recurring.find(conn, until=_until(until, now), days=days, radius_m=radius_m,
                                min_events=min_events, category=category)


@router.get("/v1/analysis/forecast", response_model=ForecastOut, dependencies=READERS)
async def get_forecast(
    conn: Conn, now: Now, category: Annotated[str, Query(max_length=32)],
    history_weeks: Annotated[int, Query(ge=8, le=260)] = 104, until: datetime | None = None,
) -> dict:
    """Weekly volume of one category, and the next four weeks with 80 % intervals; 422 when
    the series is too short to forecast."""
    return await forecast.forecast(conn, category, _until(until, now), history_weeks)


@router.post("/v1/analysis/forecast", response_model=ForecastOut,
             dependencies=[Depends(require(Role.DISPATCHER, Role.DATA_ADMIN))])
async def store_forecast(
    conn: Conn, now: Now, category: Annotated[str, Query(max_length=32)],
    history_weeks: Annotated[int, Query(ge=8, le=260)] = 104,
) -> dict:
    """Forecast as GET does, and keep it so its error is measured when the weeks come."""
    return await forecast.forecast(conn, category, now, history_weeks, store=True)


@router.get("/v1/analysis/forecast/accuracy", response_model=AccuracyOut, dependencies=READERS)
async def get_accuracy(conn: Conn, now: Now,
                       category: Annotated[str, Query(max_length=32)]) -> dict:
    """Mean absolute error of the kept forecasts against what came, beside the naive one's."""
    return await forecast.accuracy(conn, category, now)


@router.get("/v1/analysis/departments", response_model=list[DepartmentWeekOut],
            dependencies=READERS)
async def get_department_performance(
    conn: Conn, now: Now, weeks: Annotated[int, Query(ge=1, le=104)] = 12,
    department: Annotated[str | None, Query(max_length=64)] = None,
) -> list[dict]:
    """Per department and week: dispatched, disposed (on time), closed, reworked, and rates."""
    return await performance.weekly(conn, now, weeks, department)


@router.get("/v1/merge-suggestions", response_model=list[MergeSuggestionOut],
            dependencies=DECIDERS)
async def list_merge_suggestions(
    conn: Conn, event_id: Annotated[int | None, Query(ge=1)] = None,
) -> list[dict]:
    """Duplicate reports waiting for the dispatcher (found at intake)."""
    return await duplicates.pending(conn, event_id)


@router.post("/v1/merge-suggestions/{suggestion_id}/accept",
             response_model=MergeSuggestionOut, dependencies=DECIDERS)
async def accept_merge_suggestion(
    conn: Conn, now: Now, suggestion_id: SuggestionId, caller: Caller,
) -> dict:
    """The new report is closed as merged into the open event (409 once it was dispatched)."""
    return await duplicates.decide(conn, suggestion_id, True, caller, now)


@router.post("/v1/merge-suggestions/{suggestion_id}/refuse",
             response_model=MergeSuggestionOut, dependencies=DECIDERS)
async def refuse_merge_suggestion(
    conn: Conn, now: Now, suggestion_id: SuggestionId, caller: Caller,
) -> dict:
    """Both reports stay separate cases."""
    return await duplicates.decide(conn, suggestion_id, False, caller, now)
