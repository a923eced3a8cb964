"""The indicator system (指标体系): browse, define (data_admin), compute, chart and drill down;
indicator alarms; the hub listing indicators and data APIs together (/v1/hub)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from api.deps import Conn, get_principal, require
from api.routes.event_views import Now
from api.schemas.indicators import (
    CockpitOut,
    Computed,
    DimensionValue,
    HubEntry,
    IndicatorAlarm,
    IndicatorClass,
    IndicatorIn,
    IndicatorOut,
    IndicatorRow,
    Series,
)
from cityops.errors import InvalidInput
from cityops.principal import Principal, Role
from indicators import alarms, cockpit, compute, store

router = APIRouter(tags=["indicators"])
READERS = [Depends(require(Role.OPERATOR, Role.DISPATCHER, Role.VIEWER, Role.DATA_ADMIN,
                           Role.DEPARTMENT_STAFF))]
EDITORS = [Depends(require(Role.DATA_ADMIN))]
RESPONDERS = [Depends(require(Role.OPERATOR, Role.DISPATCHER, Role.DATA_ADMIN))]
Code = Annotated[str, Path(pattern=r"^[A-Z][A-Z0-9]{0,3}(\.[0-9]{2}){0,3}\.[0-9]{3}$")]
Caller = Annotated[Principal, Depends(get_principal)]


@router.get("/v1/indicator-classes", response_model=list[IndicatorClass], dependencies=READERS)
async def list_classes(conn: Conn) -> list[dict]:
    return await store.classes(conn)


@router.get("/v1/indicators", response_model=list[IndicatorRow], dependencies=READERS)
async def list_indicators(
    conn: Conn, class_code: Annotated[str | None, Query(alias="class", max_length=20)] = None,
) -> list[dict]:
    """Every indicator with its latest county-wide value and light, and its last run."""
    return await store.listing(conn, class_code)


@router.get("/v1/indicators/{code}", response_model=IndicatorOut, dependencies=READERS)
async def get_indicator(conn: Conn, code: Code) -> dict:
    return await store.get(conn, code)


@router.put("/v1/indicators/{code}", response_model=IndicatorOut, dependencies=EDITORS)
async def put_indicator(conn: Conn, code: Code, body: IndicatorIn, caller: Caller) -> dict:
    """Create or change a definition (a change bumps its version). Thresholds in the wrong
    direction or outside the unit's range, and queries reading anything but metrics.*, are
    refused with 422."""
    if body.code != code:
        raise InvalidInput(f"the body's code {body.code} is not the path's {code}")
    return await store.upsert(conn, body, caller.name)


@router.get("/v1/indicators/{code}/values", response_model=Series, dependencies=READERS)
async def get_values(
    conn: Conn, now: Now, code: Code, since: datetime | None = None,
    until: datetime | None = None, dimension: Annotated[str, Query(max_length=100)] = "",
) -> dict:
    """The series of one dimension ('' = the county) with 环比 and 同比 (%), its trend, and
    the failed periods with their errors (never drawn as zero)."""
    until = until or now
    return await store.series(conn, code, since or until - timedelta(days=90), until,
                              dimension)


@router.get("/v1/indicators/{code}/breakdown", response_model=list[DimensionValue],
            dependencies=READERS)
async def get_breakdown(conn: Conn, code: Code, period_start: datetime) -> list[dict]:
    """Drill-down: each town, department, grid or industry in one period."""
    await store.get(conn, code)
    return await store.breakdown(conn, code, period_start)


@router.post("/v1/indicators/{code}/compute", response_model=Computed, dependencies=EDITORS)
async def compute_indicator(conn: Conn, now: Now, code: Code,
                            since: datetime | None = None) -> dict:
    """Compute the latest complete period, or every period since `since` (at most a year)."""
    ind = await store.get(conn, code)
    if since is not None and now - since > timedelta(days=366):
        raise InvalidInput("since may reach back at most 366 days")
    outcomes = await compute.backfill(conn, ind, since or now - _one_period(ind), now)
    return {"periods": len(outcomes),
            "failed": [{"period_start": o.period_start, "error": o.error}
                       for o in outcomes if o.status == "failed"]}


def _one_period(ind: dict) -> timedelta:
    return {"hourly": timedelta(hours=1), "daily": timedelta(days=1),
            "weekly": timedelta(weeks=1), "monthly": timedelta(days=31)}[ind["frequency"]]


@router.get("/v1/indicator-alarms", response_model=list[IndicatorAlarm], dependencies=READERS)
async def list_indicator_alarms(
    conn: Conn, state: Literal["open", "active", "acknowledged", "cleared"] = "open",
) -> list[dict]:
    cur = await conn.execute(
        "SELECT * FROM indicator_alarms WHERE CASE WHEN %(s)s = 'open' THEN state <> 'cleared'"
        " ELSE state = %(s)s END ORDER BY last_seen_at DESC LIMIT 500", {"s": state})
    names = [c.name for c in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]


@router.post("/v1/indicator-alarms/{alarm_id}/acknowledge", response_model=IndicatorAlarm,
             dependencies=RESPONDERS)
async def acknowledge(conn: Conn, now: Now, alarm_id: Annotated[int, Path(ge=1)],
                      caller: Caller) -> dict:
    return await alarms.act(conn, alarm_id, "acknowledge", caller.name, now)


@router.post("/v1/indicator-alarms/{alarm_id}/clear", response_model=IndicatorAlarm,
             dependencies=RESPONDERS)
async def clear(conn: Conn, now: Now, alarm_id: Annotated[int, Path(ge=1)],
                caller: Caller) -> dict:
    return await alarms.act(conn, alarm_id, "clear", caller.name, now)


@router.get("/v1/hub", response_model=list[HubEntry], dependencies=READERS)
async def hub(conn: Conn, request: Request) -> list[dict]:
    """One register of indicators and the platform's data APIs (杭州 中枢's pattern), the APIs
    with their calls by applications over the last 30 days."""
    entries = [{"kind": "indicator", "id": r["code"], "name": r["name"],
                "owner": r["owner_department"], "detail": f"{r['frequency']}, {r['unit']}",
                "calls_30d": None} for r in await store.listing(conn)]
    cur = await conn.execute("SELECT method || ' ' || route, count(*) FROM api_calls"
                             " WHERE time > now() - interval '30 days' GROUP BY 1")
    calls = dict(await cur.fetchall())
    for path, operations in request.app.openapi()["paths"].items():
        get = operations.get("get")
        if not path.startswith("/v1/") or get is None:
            continue
        entries.append({"kind": "api", "id": f"GET {path}", "name": get.get("summary", path),
                        "owner": None, "detail": (get.get("tags") or [""])[0],
                        "calls_30d": calls.get(f"GET {path}", 0)})
    return entries


@router.get("/v1/cockpit", response_model=CockpitOut, dependencies=READERS)
async def get_cockpit(conn: Conn, now: Now) -> dict:
    """领导驾驶舱: the classes' state, what changed since the previous period, and what needs a
    decision (red indicators, events past their time limit, forecast spikes)."""
    return await cockpit.cockpit(conn, now)
