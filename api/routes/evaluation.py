"""城市综合管理服务评价 (issue 17 item 3): each place against its own previous months, the
scores entered by hand (实地考察, 问卷; audited), and the GB/T 30428.4 rates per town and grid.
The computing is cityevents/evaluation/."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from api.deps import Conn, get_principal, require
from api.middleware import write_audit_conn
from api.routes.event_views import Now
from api.schemas.evaluation import AreaRates, FrameworkOut, PlaceOut, PlaceTotal, ScoreIn, ScoreOut
from cityevents.evaluation import framework as fw
from cityevents.evaluation import rates, scores
from cityops.errors import InvalidInput
from cityops.principal import Principal, Role

router = APIRouter(tags=["evaluation"])
READERS = [Depends(require(Role.DISPATCHER, Role.OPERATOR, Role.VIEWER, Role.DATA_ADMIN))]
# the 监督中心 (dispatchers) run the evaluation and enter what inspectors and surveys found
ENTERERS = [Depends(require(Role.DISPATCHER))]
Caller = Annotated[Principal, Depends(get_principal)]
Framework = Annotated[str, Path(max_length=32, pattern=r"^[a-z0-9_]+$")]


def _month(period: date | None, now: datetime) -> date:
    period = period or now.date()
    if not 2000 <= period.year <= 2100:  # the months before it are computed too
        raise InvalidInput(f"period {period.isoformat()} is outside the years 2000..2100")
    return period


@router.get("/v1/evaluation/{framework}", response_model=FrameworkOut, dependencies=READERS)
async def get_framework(conn: Conn, framework: Framework) -> dict:
    """The framework as data: items, levels, weights, the categories measuring an item."""
    return await fw.load(conn, framework)


@router.get("/v1/evaluation/{framework}/scores", response_model=PlaceOut, dependencies=READERS)
async def get_scores(
    conn: Conn, now: Now, framework: Framework,
    by: Literal["county", "town", "grid"] = "county",
    area: Annotated[str, Query(max_length=64)] = "", period: date | None = None,
    periods: Annotated[int, Query(ge=1, le=36)] = 6,
) -> dict:
    """One place's scores over `periods` months ending with `period`'s month, each with its
    change from the month before (纵向对比)."""
    return await scores.place(conn, framework, by, area if by != "county" else "",
                              _month(period, now), periods)


@router.get("/v1/evaluation/{framework}/places", response_model=list[PlaceTotal],
            dependencies=READERS)
async def get_places(
    conn: Conn, now: Now, framework: Framework, by: Literal["town", "grid"] = "town",
    period: date | None = None, rank: bool = False,
) -> list[dict]:
    """Every town or grid beside its own previous month, in code order; `rank=true` orders
    by score only where the framework's method allows it (MOHURD's does not: 422)."""
    return await scores.places(conn, framework, by, _month(period, now), rank)


@router.put("/v1/evaluation/{framework}/manual-scores", response_model=ScoreOut,
            dependencies=ENTERERS)
async def put_score(conn: Conn, request: Request, caller: Caller, framework: Framework,
                    body: ScoreIn) -> dict:
    """Enter a field (实地考察) or survey (问卷) score for one item, month and place."""
    async with conn.transaction():
        row = await fw.enter_score(conn, framework, body.item, body.period, body.area,
                                   body.kind, body.score, caller.name)
        await write_audit_conn(
            conn, actor=caller.name, actor_kind=caller.kind, role=caller.role.value,
            action="PUT /v1/evaluation/{framework}/manual-scores",
            target=f"evaluation {framework} {body.item}",
            source=request.client.host if request.client else "", outcome="ok", status=200,
            detail={"period": str(row["period"]), "area": body.area, "kind": body.kind,
                    "score": body.score})
    return row


@router.get("/v1/evaluation-rates", response_model=list[AreaRates], dependencies=READERS)
async def get_rates(conn: Conn, by: Literal["town", "grid"], start: datetime,
                    end: datetime) -> list[dict]:
    """GB/T 30428.4 rates per town or grid of events first dispatched in [start, end)."""
    if start >= end:
        raise InvalidInput(f"start {start.isoformat()} is not before end {end.isoformat()}")
    return await rates.by_area(conn, by, start, end)
