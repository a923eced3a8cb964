"""数据全景: all the county's data counted (datafoundation/dashboards/panorama.py).
`?format=csv&section=...` exports one table."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api.deps import Conn, require
from api.routes.event_views import Now
from api.schemas.panorama import Panorama
from cityops.principal import Role
from datafoundation.dashboards import panorama
from datafoundation.dashboards.export import CSV_RESPONSE, Format, csv_response

WATCHERS = (Role.VIEWER, Role.DISPATCHER, Role.DEPARTMENT_STAFF, Role.OPERATOR,
            Role.OPS_ENGINEER, Role.DATA_ADMIN)
router = APIRouter(tags=["dashboards"])


@router.get("/v1/dashboards/data", response_model=Panorama, responses=CSV_RESPONSE,
            dependencies=[Depends(require(*WATCHERS))])
async def data_panorama(
    conn: Conn, now: Now,
    day: Annotated[date | None, Query(description="county day of 昨日增量; default yesterday")]
    = None,
    format: Format = "json",
    section: Literal["units", "datasets", "syncs", "production"] = "datasets",
) -> Panorama | Response:
    """Per unit and per dataset: rows, 昨日增量, files, quality score and trend; sync health;
    each layer's runs and rows in/out/quarantined (7 days); each dataset service's use."""
    board = Panorama.model_validate(await panorama.board(conn, now, day))
    if format == "csv":
        return csv_response(getattr(board, section), f"panorama-{section}-{board.day}.csv")
    return board
