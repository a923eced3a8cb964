"""Latest values of many devices at once, chosen by site, department or profile."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AnyRole, Caller, Conn
from api.queries import readings as q
from api.queries import registry as rq
from api.routes.device_registry import scoped
from api.routes.devices import latest_points
from api.schemas.readings import DeviceLatest
from api.schemas.registry import Page
from cityops.wire import ID_PATTERN

router = APIRouter(tags=["readings"], dependencies=[AnyRole])
Filter = Annotated[str | None, Query(pattern=ID_PATTERN)]


@router.get("/v1/readings/latest", response_model=Page[DeviceLatest])
async def latest_of_many(
    conn: Conn, caller: Caller,
    site: Filter = None, department: Filter = None, profile: Filter = None,
    gateway: Filter = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="devices per page")] = 1000,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict:
    """The latest value of every point of every device matching the filters, a page of
    devices at a time (ordered by device id)."""
    filters = scoped({"d.site_id": site, "d.department_id": department,
                       "d.profile_id": profile, "d.gateway_id": gateway}, caller.departments)
    devices, total = await rq.page(conn, "d.id", "devices d", filters, "d.id", limit, offset)
    ids = [d["id"] for d in devices]
    by_device: dict[str, list[dict]] = {device: [] for device in ids}
    for row in await q.latest_many(conn, ids):
        by_device[row["device"]].append(row)
    items = [DeviceLatest(device=d, points=latest_points(rows)) for d, rows in by_device.items()]
    return {"items": items, "total": total, "limit": limit, "offset": offset}
