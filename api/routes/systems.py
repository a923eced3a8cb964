"""数据汇聚 (issue #14): the system register, sources, syncs and their runs. The data bureau
(`data_admin`) manages them county-wide; department staff see their own department's systems
and may test their sources. Domain logic: datafoundation/."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from api.deps import Conn, audit_detail, check_department, get_pool, get_settings, require
from api.schemas.systems import (
    QuarantinedRow,
    RunQueued,
    SourceIn,
    SourceOut,
    SourceTestIn,
    SourceTestOut,
    SyncIn,
    SyncOut,
    SyncRunOut,
    SystemIn,
    SystemOut,
    SystemPatch,
)
from cityops.principal import Principal, Role
from cityops.settings import Settings
from datafoundation import service

router = APIRouter(tags=["data foundation"])
ADMINS = (Role.DATA_ADMIN,)
READERS = (Role.DATA_ADMIN, Role.DEPARTMENT_STAFF, Role.VIEWER)
TESTERS = (Role.DATA_ADMIN, Role.DEPARTMENT_STAFF)
SettingsDep = Annotated[Settings, Depends(get_settings)]


def _caller(*roles: Role):
    return Annotated[Principal, Depends(require(*roles))]


@router.get("/v1/systems", response_model=list[SystemOut])
async def list_systems(conn: Conn, caller: _caller(*READERS)) -> list:
    """The 信息系统"一本账": a department caller sees its own department's systems."""
    return await service.list_systems(conn, caller.departments)


@router.post("/v1/systems", status_code=201, response_model=SystemOut)
async def add_system(body: SystemIn, conn: Conn, caller: _caller(*ADMINS),
                     request: Request) -> dict:
    check_department(caller, body.department, "to register a system")
    audit_detail(request, system=body.slug, department=body.department)
    return await service.add_system(conn, body.model_dump())


@router.patch("/v1/systems/{system_id}", response_model=SystemOut)
async def update_system(system_id: int, body: SystemPatch, conn: Conn,
                        caller: _caller(*ADMINS), request: Request) -> dict:
    """Change a system's details (only the fields given); moving it to another department
    needs both departments."""
    check_department(caller, await service.system_department(conn, "systems", system_id),
                     "to change this system")
    # a null clears only the 等保 level; the other fields are required ones
    fields = {k: v for k, v in body.model_dump(exclude_unset=True).items()
              if v is not None or k == "dengbao_level"}
    if "department" in fields:
        check_department(caller, fields["department"], "to move a system there")
    audit_detail(request, system_id=system_id, fields=sorted(fields))
    return await service.update_system(conn, system_id, fields)


@router.get("/v1/sources", response_model=list[SourceOut])
async def list_sources(conn: Conn, caller: _caller(*READERS)) -> list:
    return await service.list_sources(conn, caller.departments)


@router.post("/v1/sources", status_code=201, response_model=SourceOut)
async def add_source(body: SourceIn, conn: Conn, caller: _caller(*ADMINS), request: Request,
                     settings: SettingsDep) -> dict:
    department = await service.system_department(conn, "systems", body.system_id, "system_id")
    check_department(caller, department, "to add a source to this system")
    audit_detail(request, system_id=body.system_id, source=body.name, kind=body.kind)
    credentials = {"password": body.password.get_secret_value()} if body.password else None
    return await service.add_source(
        conn, settings.secret_key.get_secret_value(),
        body.model_dump(exclude={"password"}), credentials)


@router.post("/v1/sources/{source_id}/test", response_model=SourceTestOut)
async def test_source(source_id: int, body: SourceTestIn, conn: Conn,
                      caller: _caller(*TESTERS), settings: SettingsDep) -> dict:
    """Connect as a sync would (and read a table's columns if named); a failure is the
    answer's `error`, never showing the credentials."""
    department = await service.system_department(conn, "sources", source_id)
    check_department(caller, department, "to test this source")
    return await service.test_source(conn, settings.secret_key.get_secret_value(), source_id,
                                     body.table)


@router.get("/v1/syncs", response_model=list[SyncOut])
async def list_syncs(conn: Conn, caller: _caller(*READERS)) -> list:
    return await service.list_syncs(conn, caller.departments)


@router.post("/v1/syncs", status_code=201, response_model=SyncOut)
async def add_sync(body: SyncIn, conn: Conn, caller: _caller(*ADMINS),
                   request: Request) -> dict:
    department = await service.system_department(conn, "sources", body.source_id, "source_id")
    check_department(caller, department, "to add a sync to this source")
    audit_detail(request, source_id=body.source_id, object=body.object)
    return await service.add_sync(conn, body.model_dump())


@router.post("/v1/syncs/{sync_id}/run", status_code=202, response_model=RunQueued)
async def run_sync(sync_id: int, conn: Conn, caller: _caller(*ADMINS),
                   settings: SettingsDep) -> dict:
    """Queue a run for the `cityops sync worker` processes (queue `sync`)."""
    from datafoundation.jobs import build_app, defer

    department = await service.system_department(conn, "syncs", sync_id)
    check_department(caller, department, "to run this sync")
    app = build_app(settings)
    async with app.open_async():
        return {"job": await defer(app, sync_id)}


@router.get("/v1/sync-runs", response_model=list[SyncRunOut])
async def list_runs(conn: Conn, caller: _caller(*READERS),
                    sync_id: Annotated[int | None, Query()] = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list:
    """Run history, newest first, with progress (rows read, written, deleted) and errors."""
    return await service.list_runs(conn, caller.departments, sync_id, limit)


@router.get("/v1/sync-runs/{run_id}/quarantine", response_model=list[QuarantinedRow])
async def run_quarantine(run_id: int, conn: Conn, caller: _caller(*READERS),
                         limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list:
    """The rows this run set aside (source, table, the row, why), oldest first."""
    check_department(caller, await service.system_department(conn, "sync_runs", run_id),
                     "to read this run")
    return await service.quarantined(conn, run_id, limit)


@router.get("/v1/sync-runs/{run_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "events: progress (rows read/written/set aside, "
                                            "seconds left), done"}})
async def run_events(run_id: int, request: Request, caller: _caller(*READERS),
                     interval_s: Annotated[float, Query(ge=0.2, le=30)] = 1.0
                     ) -> StreamingResponse:
    """A run's live progress as Server-Sent Events: `progress` whenever it changed, `done`
    (then the stream ends) once it succeeded or failed."""
    # a pooled connection only for the check: the stream may last as long as the run
    async with get_pool(request).connection() as conn:
        check_department(caller, await service.system_department(conn, "sync_runs", run_id),
                         "to follow this run")
    return StreamingResponse(progress_stream(request, run_id, interval_s),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def progress_stream(request: Request, run_id: int, interval_s: float):
    import asyncio

    import orjson

    seen, beat = None, 0.0
    yield b": connected\n\n"
    while not await request.is_disconnected():
        async with get_pool(request).connection() as conn:
            now = await service.run_progress(conn, run_id)
        done = now["state"] in ("succeeded", "failed")
        if now != seen or done:
            kind = b"done" if done else b"progress"
            yield b"event: " + kind + b"\ndata: " + orjson.dumps(now, default=str) + b"\n\n"
            seen = now
        if done:
            return
        beat += interval_s
        if beat >= 15:
            yield b": keep-alive\n\n"
            beat = 0.0
        await asyncio.sleep(interval_s)
