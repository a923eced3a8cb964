"""Gateways: registering one issues its broker credentials (shown once); revoking cuts it off."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from api.departments import check_departments
from api.deps import AnyRole, Caller, Conn, allow, audit_detail, onboarding
from api.queries import registry as rq
from api.routes.device_registry import scoped
from api.schemas.registry import Gateway, GatewayIn, GatewayRegistered, MqttCredentials, Page
from cityops.principal import Role
from cityops.wire import ID_PATTERN

router = APIRouter(tags=["gateways"])
TECHNICIAN = allow(Role.FIELD_TECHNICIAN)
GatewayKey = Annotated[str, Path(pattern=ID_PATTERN, examples=["gw-pump-03"])]
Filter = Annotated[str | None, Query(pattern=ID_PATTERN)]


@router.get("/v1/gateways", response_model=Page[Gateway], dependencies=[AnyRole])
async def list_gateways(
    conn: Conn, caller: Caller,
    site: Filter = None,
    department: Filter = None,
    revoked: Annotated[bool | None, Query(description="only revoked (true) or active")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict:
    filters = {"g.site_id": site, "g.department_id": department,
               "(g.revoked_at IS NOT NULL)": revoked}
    filters = scoped(filters, caller.departments, "g.department_id")
    items, total = await rq.page(conn, rq.GATEWAY_COLUMNS, "gateways g", filters, "g.id",
                                 limit, offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/v1/gateways/{gateway}", response_model=Gateway, dependencies=[AnyRole])
async def get_gateway(gateway: GatewayKey, conn: Conn) -> dict:
    return await rq.gateway(conn, gateway)


@router.post(
    "/v1/gateways", response_model=GatewayRegistered, status_code=201,
    dependencies=[TECHNICIAN],
    responses={409: {"description": "the gateway exists already"},
               503: {"description": "the broker's accounts could not be updated"}},
)
async def register_gateway(body: GatewayIn, conn: Conn, caller: Caller, request: Request
                           ) -> dict:
    """Register a gateway and issue its MQTT credentials. The password is in this answer
    only: keep it for the agent (CITYOPS_GATEWAY_PASSWORD)."""
    audit_detail(request, gateway=body.id)
    check_departments(caller, {body.department}, f"gateway {body.id!r}")
    svc = onboarding(request)
    password = await svc.register(body.model_dump())
    return {"gateway": await rq.gateway(conn, body.id),
            "mqtt": MqttCredentials(**svc.credentials_body(body.id, password))}


@router.post("/v1/gateways/{gateway}/credentials", response_model=GatewayRegistered,
             dependencies=[TECHNICIAN])
async def rotate_credentials(gateway: GatewayKey, conn: Conn, request: Request) -> dict:
    """Issue new credentials (the old ones stop working): after a revoke, or a lost password."""
    audit_detail(request, gateway=gateway)
    svc = onboarding(request)
    password = await svc.rotate(gateway)
    return {"gateway": await rq.gateway(conn, gateway),
            "mqtt": MqttCredentials(**svc.credentials_body(gateway, password))}


@router.post("/v1/gateways/{gateway}/revoke", response_model=Gateway,
             dependencies=[TECHNICIAN])
async def revoke_gateway(gateway: GatewayKey, conn: Conn, request: Request) -> dict:
    """Refuse the gateway's logins and drop its open connection at once."""
    audit_detail(request, gateway=gateway)
    await onboarding(request).revoke(gateway)
    return await rq.gateway(conn, gateway)
