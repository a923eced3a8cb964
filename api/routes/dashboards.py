"""The dashboards (数据展示体系): ingestion and data services, from the platform's own data.

`?format=csv&section=...` exports one table of a dashboard.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api.deps import Conn, require
from api.routes.event_views import Now
from api.schemas.dashboards import IngestionDashboard, ServicesDashboard
from cityops.principal import Role
from datafoundation.dashboards import figures
from datafoundation.dashboards.export import CSV_RESPONSE, Format, csv_response

WATCHERS = (Role.VIEWER, Role.DISPATCHER, Role.DEPARTMENT_STAFF, Role.OPERATOR,
            Role.OPS_ENGINEER)
router = APIRouter(tags=["dashboards"], dependencies=[Depends(require(*WATCHERS))])


@router.get("/v1/dashboards/ingestion", response_model=IngestionDashboard,
            responses=CSV_RESPONSE)
async def ingestion(
    conn: Conn, now: Now,
    day: Annotated[date | None, Query(description="county day; default yesterday")] = None,
    format: Format = "json",
    section: Literal["departments", "quality"] = "departments",
) -> IngestionDashboard | Response:
    """Totals, yesterday's increment, volumes per department, data quality."""
    board = IngestionDashboard.model_validate(await figures.ingestion(conn, now, day))
    if format == "csv":
        rows = board.departments if section == "departments" else board.quality.departments
        return csv_response(rows, f"ingestion-{section}-{board.day}.csv")
    return board


@router.get("/v1/dashboards/services", response_model=ServicesDashboard,
            responses=CSV_RESPONSE)
async def services(
    conn: Conn, now: Now, top: Annotated[int, Query(ge=1, le=200)] = 20,
    format: Format = "json",
    section: Literal["popular_1d", "popular_7d", "popular_30d", "applications",
                     "resources"] = "resources",
) -> ServicesDashboard | Response:
    """Cumulative calls, popularity over 1/7/30 days, calling applications, grants and
    calls per resource, the portal's requests."""
    board = ServicesDashboard.model_validate(await figures.services(conn, now, top))
    if format == "csv":
        if section.startswith("popular_"):
            rows = board.popular[section.removeprefix("popular_")]
        else:
            rows = getattr(board, section)
        return csv_response(rows, f"services-{section}.csv")
    return board
