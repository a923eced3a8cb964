"""Latest values of many devices at once, chosen by site, department or profile."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import AnyRole, Caller, Conn
from api.queries import readings as q
from api.routes.device_registry import scoped
from api.schemas.readings import LatestPage
from cityops.wire import ID_PATTERN

router = APIRouter(tags=["readings"], dependencies=[AnyRole])
Filter = Annotated[str | None, Query(pattern=ID_PATTERN)]


@router.get("/v1/readings/latest", response_model=LatestPage)
async def latest_of_many(
    conn: Conn, caller: Caller,
    site: Filter = None, department: Filter = None, profile: Filter = None,
    gateway: Filter = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="devices per page")] = 1000,
    after: Annotated[str | None, Query(
        pattern=ID_PATTERN, description="the previous page's `next_after`")] = None,
) -> Response:
    """The latest value of every point of every device matching the filters, a page of
    devices at a time, ordered by device id: pages follow by keyset (`after`), so a deep
    page costs what the first does. Values come from the latest-value table that ingestion
    keeps (docs/ingestion.md), not from a search of the readings."""
    filters = scoped({"d.site_id": site, "d.department_id": department,
                       "d.profile_id": profile, "d.gateway_id": gateway}, caller.departments)
    items, total, next_after = await q.latest_page_json(conn, filters, after, limit)
    head = orjson.dumps({"total": total, "limit": limit, "next_after": next_after})
    return Response(b'{"items":' + items + b"," + head[1:], media_type="application/json")
