"""Commands to devices and command-centre presets (operators)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from psycopg.types.json import Jsonb

from api.departments import check_departments
from api.deps import Caller, Conn, allow, audit_detail, get_pool
from api.queries import registry as rq
from api.routes.device_registry import scoped
from api.schemas.commands import Command, CommandIn, Preset, PresetIn, PresetRun
from api.schemas.registry import Page
from api.services import commands as svc
from api.services import presets
from api.services.commands import Commander
from api.services.devices import profile_of
from api.services.presets import PresetRunner
from cityops.errors import InvalidInput
from cityops.principal import Role
from cityops.wire import ID_PATTERN

router = APIRouter(tags=["commands"])
OPERATOR = allow(Role.OPERATOR)
FOLLOWERS = allow(Role.OPERATOR, Role.FIELD_TECHNICIAN)
# the department of a command's device, and whether all of a preset's devices are in a list
_DEPARTMENT = "(SELECT d.department_id FROM devices d WHERE d.id = commands.device_id)"
_PRESET_DEPARTMENTS = ("ARRAY(SELECT coalesce(d.department_id, '') FROM jsonb_array_elements("
                       "presets.steps) s JOIN devices d ON d.id = s->>'device') <@")
DeviceKey = Annotated[str, Path(pattern=ID_PATTERN, examples=["meter-01"])]
Name = Annotated[str, Path(pattern=ID_PATTERN, examples=["morning-briefing"])]


def commander(request: Request) -> Commander:
    return request.app.state.commander


def runner(request: Request) -> PresetRunner:
    return request.app.state.presets


@router.post(
    "/v1/devices/{device}/commands", response_model=Command, status_code=202,
    dependencies=[OPERATOR],
    responses={404: {"description": "no such device"},
               422: {"description": "the profile does not allow it (not writable, out of "
                                    "range, unknown method or arguments)"},
               503: {"description": "the broker is unavailable: not sent"}},
)
async def send_command(device: DeviceKey, body: CommandIn, conn: Conn, caller: Caller,
                       request: Request) -> dict:
    """Check a write or method call against the device's profile and send it. The answer
    is the command, usually `sent`; follow it with GET /v1/commands/{id}."""
    await rq.device(conn, device)
    audit_detail(request, device=device, point=body.point, method=body.method)
    action = body.model_dump(include={"point", "value", "method", "args"})
    row = await commander(request).submit(caller.name, device, action, body.ttl_s)
    audit_detail(request, command=str(row["id"]))
    return row


@router.get("/v1/commands/{command}", response_model=Command, dependencies=[FOLLOWERS])
async def get_command(command: uuid.UUID, conn: Conn) -> dict:
    return await svc.get(conn, command)


@router.get("/v1/commands", response_model=Page[Command], dependencies=[FOLLOWERS])
async def list_commands(
    conn: Conn, caller: Caller,
    device: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    state: Annotated[str | None, Query(pattern="^(pending|sent|succeeded|failed|rejected|"
                                                "expired)$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict:
    filters = scoped({"device_id": device, "state": state}, caller.departments, _DEPARTMENT)
    items, total = await rq.page(conn, svc.COLUMNS, "commands", filters,
                                 "created_at DESC, id", limit, offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/v1/presets", response_model=Page[Preset], dependencies=[FOLLOWERS])
async def list_presets(
    conn: Conn, caller: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict:
    # a caller limited to departments sees the presets all of whose devices are theirs
    filters = {} if caller.departments is None else {_PRESET_DEPARTMENTS: caller.departments}
    items, total = await rq.page(conn, "name, title, steps, updated_by, updated_at",
                                 "presets", filters, "name", limit, offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/v1/presets/{name}", response_model=Preset, dependencies=[FOLLOWERS])
async def get_preset(name: Name, request: Request) -> dict:
    return await presets.load(get_pool(request), name)


@router.put("/v1/presets/{name}", response_model=Preset, dependencies=[OPERATOR])
async def save_preset(name: Name, body: PresetIn, conn: Conn, caller: Caller,
                      request: Request) -> dict:
    """Create or replace a preset; every step is checked against its device's profile."""
    audit_detail(request, preset=name)
    for index, step in enumerate(body.steps):
        try:
            gateway_profile = await conn.execute(
                "SELECT profile_id, department_id FROM devices WHERE id = %s", (step.device,))
            row = await gateway_profile.fetchone()
            if row is None:
                raise InvalidInput(f"device {step.device!r} is not registered")
            check_departments(caller, {row[1]}, f"steps.{index}: device {step.device!r}")
            svc.check_against(await profile_of(conn, row[0]), step.model_dump())
        except InvalidInput as err:
            raise InvalidInput(f"steps.{index}: {err.detail}") from err
    steps = [step.model_dump(exclude_none=True) for step in body.steps]
    await conn.execute(
        "INSERT INTO presets (name, title, steps, updated_by) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (name) DO UPDATE SET title = excluded.title, steps = excluded.steps,"
        " updated_by = excluded.updated_by, updated_at = now()",
        (name, body.title, Jsonb(steps), caller.name),
    )
    return await presets.load_with(conn, name)


@router.post("/v1/presets/{name}/run", response_model=PresetRun, status_code=202,
             dependencies=[OPERATOR])
async def run_preset(name: Name, caller: Caller, request: Request) -> dict:
    """Run a preset's steps in order as one operation; follow it with
    GET /v1/preset-runs/{id}. Its outcome, step by step, also goes to the audit log."""
    source = request.client.host if request.client else ""
    run_id = await runner(request).start(name, caller, source)
    audit_detail(request, preset=name, run=str(run_id))
    return await presets.get_run(get_pool(request), run_id)


@router.get("/v1/preset-runs/{run}", response_model=PresetRun, dependencies=[FOLLOWERS])
async def get_preset_run(run: uuid.UUID, request: Request) -> dict:
    return await presets.get_run(get_pool(request), run)
