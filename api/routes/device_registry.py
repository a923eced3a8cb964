"""Devices in the registry: anyone logged in reads them (an API key only its departments'),
field technicians register, change and remove them, one at a time or from CSV."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import ValidationError

from api.departments import check_departments
from api.deps import AnyRole, Caller, Conn, allow, audit_detail, check_department, onboarding
from api.queries import registry as rq
from api.schemas.registry import Device, DeviceIn, DevicePatch, ImportReport, Page, Point
from api.services import devices as svc
from api.services.gateways import bump_config
from cityops.errors import InvalidInput
from cityops.principal import Role
from cityops.wire import ID_PATTERN

router = APIRouter(tags=["devices"])
TECHNICIAN = allow(Role.FIELD_TECHNICIAN)
DeviceKey = Annotated[str, Path(pattern=ID_PATTERN, examples=["meter-01"])]
Filter = Annotated[str | None, Query(pattern=ID_PATTERN)]
CSV_EXAMPLE = (
    "id,title,gateway,profile,site,department,latitude,longitude,address.host,address.port,"
    "address.unit_id\nmeter-07,Pump 3 board,gw-pump-03,power-meter-3ph,pump-3,"
    "water-resources,33.92,116.77,10.20.0.31,502,7\n"
)


@router.get("/v1/devices", response_model=Page[Device], dependencies=[AnyRole])
async def list_devices(
    conn: Conn, caller: Caller,
    gateway: Filter = None, site: Filter = None, department: Filter = None,
    profile: Filter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict:
    filters = {"d.gateway_id": gateway, "d.site_id": site, "d.department_id": department,
               "d.profile_id": profile}
    items, total = await rq.page(conn, rq.DEVICE_COLUMNS, "devices d",
                                 scoped(filters, caller.departments), "d.id", limit, offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def scoped(filters: dict, departments: frozenset[str] | None,
           column: str = "d.department_id") -> dict:
    """A caller limited to departments lists only their objects (a list filters by ANY)."""
    if departments is not None:
        wanted = filters.get(column)
        filters[column] = (
            ([wanted] if wanted in departments else []) if wanted else sorted(departments)
        )
    return filters


@router.get("/v1/devices/{device}", response_model=Device, dependencies=[AnyRole])
async def get_device(device: DeviceKey, conn: Conn, caller: Caller) -> dict:
    row = await rq.device(conn, device)
    check_department(caller, row["department"], f"device {device!r}")
    return row


@router.get("/v1/devices/{device}/points", response_model=list[Point], dependencies=[AnyRole])
async def device_points(device: DeviceKey, conn: Conn, caller: Caller) -> list[dict]:
    row = await rq.device(conn, device)
    check_department(caller, row["department"], f"device {device!r}")
    return await rq.points(conn, device)


@router.post("/v1/devices", response_model=Device, status_code=201, dependencies=[TECHNICIAN],
             responses={409: {"description": "the device exists already"}})
async def register_device(body: DeviceIn, conn: Conn, caller: Caller, request: Request
                          ) -> dict:
    """Register a device on a gateway; its points come from its profile, and the gateway's
    agent receives it with its next config."""
    audit_detail(request, device=body.id, gateway=body.gateway)
    check_departments(caller, {body.department, await _gateway_department(conn, body)},
                      f"device {body.id!r}")
    await svc.create_device(conn, body)
    await conn.commit()
    onboarding(request).schedule({body.gateway})
    return await rq.device(conn, body.id)


@router.patch("/v1/devices/{device}", response_model=Device, dependencies=[TECHNICIAN])
async def change_device(device: DeviceKey, body: DevicePatch, conn: Conn, caller: Caller,
                        request: Request) -> dict:
    audit_detail(request, device=device, fields=sorted(body.model_fields_set))
    if "department" in body.model_fields_set:
        check_departments(caller, {body.department}, f"device {device!r}")
    current = await rq.device(conn, device)
    if not body.model_fields_set:
        return current
    fields = {k: v for k, v in current.items() if k != "created_at"}
    try:
        merged = DeviceIn.model_validate(fields | body.model_dump(exclude_unset=True))
    except ValidationError as err:
        raise InvalidInput("; ".join(svc.describe(err))) from err
    async with conn.transaction():
        address = await svc.checked_address(conn, merged)
        await conn.execute(
            "UPDATE devices SET title = %s, gateway_id = %s, address = %s::jsonb, site_id = %s,"
            " department_id = %s, latitude = %s, longitude = %s, poll_interval_s = %s,"
            " timeout_s = %s WHERE id = %s",
            (merged.title, merged.gateway, orjson.dumps(address).decode(), merged.site,
             merged.department, merged.latitude, merged.longitude, merged.poll_interval_s,
             merged.timeout_s, device),
        )
        await bump_config(conn, {current["gateway"], merged.gateway})
    await conn.commit()  # the publisher reads the config on its own connection
    onboarding(request).schedule({current["gateway"], merged.gateway})
    return await rq.device(conn, device)


@router.delete("/v1/devices/{device}", status_code=204, dependencies=[TECHNICIAN])
async def remove_device(device: DeviceKey, conn: Conn, request: Request) -> None:
    """Remove a device and its points from the registry and from its gateway's config.
    Its stored readings stay until retention drops them."""
    audit_detail(request, device=device)
    current = await rq.device(conn, device)
    async with conn.transaction():
        await conn.execute("DELETE FROM devices WHERE id = %s", (device,))
        await bump_config(conn, {current["gateway"]})
    await conn.commit()
    onboarding(request).schedule({current["gateway"]})


@router.post(
    "/v1/devices/import", response_model=ImportReport, status_code=201,
    dependencies=[TECHNICIAN],
    responses={422: {"description": "rows rejected; `rows` lists each with its reasons and "
                                    "nothing was imported"}},
)
async def import_devices(
    conn: Conn, request: Request, caller: Caller,
    body: Annotated[bytes, Body(media_type="text/csv", examples=[CSV_EXAMPLE])],
) -> dict:
    """Register many devices from CSV, all or none. Columns are DeviceIn's fields; the
    address takes one column per field: `address.host`, `address.port`, ... UTF-8 (with or
    without a byte-order mark), GBK and UTF-16 are read; `encoding` says which was."""
    imported, encoding = await svc.import_csv(conn, body)
    audit_detail(request, devices=len(imported))
    if caller.departments is not None:  # raising here rolls the whole import back
        cur = await conn.execute("SELECT DISTINCT department_id FROM devices WHERE id = ANY(%s)",
                                 (imported,))
        check_departments(caller, {r[0] for r in await cur.fetchall()}, "import")
    await conn.commit()
    onboarding(request).schedule(set(await _gateways_of(conn, imported)))
    return {"imported": len(imported), "devices": imported, "encoding": encoding}


async def _gateway_department(conn: Conn, body: DeviceIn) -> str | None:
    """The department of the gateway a device is put on (its config is that gateway's)."""
    cur = await conn.execute("SELECT department_id FROM gateways WHERE id = %s", (body.gateway,))
    row = await cur.fetchone()
    return row[0] if row else body.department


async def _gateways_of(conn: Conn, devices: list[str]) -> list[str]:
    cur = await conn.execute("SELECT DISTINCT gateway_id FROM devices WHERE id = ANY(%s)",
                             (devices,))
    return [r[0] for r in await cur.fetchall()]
