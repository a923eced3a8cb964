"""The command centre's network (issue 20 item 2): topology from LLDP and declared links,
each network device's port table. A port's history is the device readings route's
(GET /v1/devices/{device}/readings?point=port1.in_bps&bucket=1m): not repeated here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from api.deps import Caller, Conn, allow, audit_detail, check_department
from api.schemas.network import Link, LinkIn, PortTable, Topology
from cityops.principal import Role
from cityops.wire import ID_PATTERN
from network import store

router = APIRouter(tags=["network"])
DeviceId = Annotated[str, Path(pattern=ID_PATTERN, examples=["sw-core-1"])]
LinkId = Annotated[int, Path(ge=1, le=2**62)]
WATCHERS = allow(Role.OPERATOR, Role.OPS_ENGINEER, Role.FIELD_TECHNICIAN)
ENGINEERS = allow(Role.OPS_ENGINEER, Role.FIELD_TECHNICIAN)


def _departments(caller: Caller) -> list[str] | None:
    return None if caller.departments is None else sorted(caller.departments)


@router.get("/v1/network/topology", response_model=Topology, dependencies=[WATCHERS])
async def network_topology(conn: Conn, caller: Caller) -> dict:
    """The network devices (profile category `network`) the caller sees with their status,
    the links between them (from LLDP, else declared) with each end's port, status, speed
    and utilisation, and the ports that are down with their alarms."""
    return await store.network_topology(conn, _departments(caller))


@router.get("/v1/network/devices/{device}/ports", response_model=PortTable,
            dependencies=[WATCHERS])
async def device_ports(device: DeviceId, conn: Conn) -> dict:
    """A network device's port table with each port's open alarms (its department was
    checked before: api/departments.py)."""
    return await store.device_ports(conn, device)


@router.get("/v1/network/links", response_model=list[Link], dependencies=[WATCHERS])
async def list_links(conn: Conn, caller: Caller) -> list[dict]:
    """The declared links (those LLDP reports need no declaration)."""
    rows = await store.declared_links(conn)
    if caller.departments is None:
        return rows
    seen = {d["id"] for d in await store.network_devices(conn, _departments(caller))}
    return [r for r in rows if r["device_a"] in seen and r["device_b"] in seen]


@router.post("/v1/network/links", response_model=Link, status_code=201,
             dependencies=[ENGINEERS])
async def declare_link(body: LinkIn, conn: Conn, caller: Caller, request: Request) -> dict:
    """Declare a link between two network devices' ports (for devices without LLDP)."""
    values = body.model_dump()
    for department, field in zip(await store.link_departments(conn, values),
                                 ("device_a", "device_b"), strict=True):
        check_department(caller, department, f"{field} {values[field]!r}")
    row = await store.declare_link(conn, values, caller.name)
    audit_detail(request, link=row["id"], device_a=body.device_a, port_a=body.port_a,
                 device_b=body.device_b, port_b=body.port_b)
    return row


@router.delete("/v1/network/links/{link}", response_model=Link, dependencies=[ENGINEERS])
async def remove_link(link: LinkId, conn: Conn, request: Request) -> dict:
    """Remove a declared link (both its devices' departments were checked before)."""
    row = await store.remove_link(conn, link)
    audit_detail(request, link=link, device_a=row["device_a"], port_a=row["port_a"],
                 device_b=row["device_b"], port_b=row["port_b"])
    return row
