"""Sites, departments and profiles: anyone logged in reads them, field technicians write."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import psycopg
from fastapi import APIRouter, Body, Path, Query, Request

from api.deps import AnyRole, Conn, allow, audit_detail, onboarding
from api.queries import registry as rq
from api.schemas.registry import (
    Department,
    DepartmentIn,
    Page,
    ProfileOut,
    ProfileSummary,
    Site,
    SiteIn,
)
from api.services.devices import load_profile_body, sync_points
from api.services.gateways import bump_config
from cityops.errors import Conflict
from cityops.principal import Role
from cityops.wire import ID_PATTERN

router = APIRouter(tags=["registry"])
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Key = Annotated[str, Path(pattern=ID_PATTERN)]
TECHNICIAN = allow(Role.FIELD_TECHNICIAN)
PROFILE_EXAMPLE = {
    "model": "water-level-radar", "title": "Radar water level sensor", "category":
    "environment", "protocol": "modbus",
    "points": [{"name": "level_m", "data_type": "float32", "unit": "m",
                "address": {"table": "input_register", "offset": 0}}],
}


async def _insert(conn: Conn, table: str, body: SiteIn | DepartmentIn) -> dict:
    try:
        cur = await conn.execute(
            f"INSERT INTO {table} (id, name) VALUES (%s, %s) RETURNING id, name, created_at",
            (body.id, body.name),
        )
    except psycopg.errors.UniqueViolation as err:
        raise Conflict(f"{table[:-1]} {body.id!r} already exists") from err
    row = await cur.fetchone()
    return dict(zip(("id", "name", "created_at"), row, strict=True))  # type: ignore[arg-type]


@router.get("/v1/sites", response_model=Page[Site], dependencies=[AnyRole])
async def list_sites(conn: Conn, limit: Limit = 100, offset: Offset = 0) -> dict:
    items, total = await rq.page(conn, "id, name, created_at", "sites", {}, "id", limit, offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post("/v1/sites", response_model=Site, status_code=201, dependencies=[TECHNICIAN])
async def create_site(body: SiteIn, conn: Conn, request: Request) -> dict:
    audit_detail(request, site=body.id)
    return await _insert(conn, "sites", body)


@router.get("/v1/departments", response_model=Page[Department], dependencies=[AnyRole])
async def list_departments(conn: Conn, limit: Limit = 100, offset: Offset = 0) -> dict:
    items, total = await rq.page(conn, "id, name, created_at", "departments", {}, "id", limit,
                                 offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post("/v1/departments", response_model=Department, status_code=201,
             dependencies=[TECHNICIAN])
async def create_department(body: DepartmentIn, conn: Conn, request: Request) -> dict:
    audit_detail(request, department=body.id)
    return await _insert(conn, "departments", body)


@router.get("/v1/profiles", response_model=Page[ProfileSummary], dependencies=[AnyRole])
async def list_profiles(
    conn: Conn, limit: Limit = 100, offset: Offset = 0,
    protocol: Annotated[str | None, Query(max_length=20)] = None,
    category: Annotated[str | None, Query(max_length=20)] = None,
) -> dict:
    items, total = await rq.page(conn, rq.PROFILE_COLUMNS, "profiles p",
                                 {"p.protocol": protocol, "p.category": category}, "p.id",
                                 limit, offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/v1/profiles/{profile}", response_model=ProfileOut, dependencies=[AnyRole])
async def get_profile(profile: Key, conn: Conn) -> dict:
    return await rq.profile(conn, profile)


ProfileBody = Annotated[dict[str, Any], Body(
    description="a device profile as in docs/profiles.md (the YAML, as JSON)",
    examples=[PROFILE_EXAMPLE],
)]


@router.post("/v1/profiles", response_model=ProfileOut, status_code=201,
             dependencies=[TECHNICIAN])
async def create_profile(body: ProfileBody, conn: Conn, request: Request) -> dict:
    profile = load_profile_body(body)
    audit_detail(request, profile=profile.model)
    try:
        await conn.execute(
            "INSERT INTO profiles (id, protocol, category, title, body)"
            " VALUES (%s, %s, %s, %s, %s::jsonb)",
            (profile.model, profile.protocol, profile.category, profile.title,
             orjson.dumps(profile.model_dump(mode="json")).decode()),
        )
    except psycopg.errors.UniqueViolation as err:
        raise Conflict(f"profile {profile.model!r} already exists: PUT to replace it") from err
    return await rq.profile(conn, profile.model)


@router.put("/v1/profiles/{profile}", response_model=ProfileOut, dependencies=[TECHNICIAN])
async def replace_profile(profile: Key, body: ProfileBody, conn: Conn, request: Request
                          ) -> dict:
    """Replace a profile: its devices gain its new points and their gateways a new config.
    Points the new version no longer has are kept, with their readings."""
    loaded = load_profile_body(body)
    audit_detail(request, profile=profile)
    if loaded.model != profile:
        raise Conflict(f"the body is profile {loaded.model!r}, the path names {profile!r}")
    await rq.profile(conn, profile)
    async with conn.transaction():
        await conn.execute(
            "UPDATE profiles SET protocol = %s, category = %s, title = %s, body = %s::jsonb,"
            " updated_at = now() WHERE id = %s",
            (loaded.protocol, loaded.category, loaded.title,
             orjson.dumps(loaded.model_dump(mode="json")).decode(), profile),
        )
        cur = await conn.execute("SELECT id, gateway_id FROM devices WHERE profile_id = %s",
                                 (profile,))
        devices = await cur.fetchall()
        for device, _gateway in devices:
            await sync_points(conn, device, loaded)
        await bump_config(conn, {gateway for _device, gateway in devices})
    await conn.commit()  # the publisher reads the config on its own connection
    onboarding(request).schedule({gateway for _device, gateway in devices})
    return await rq.profile(conn, profile)
