"""Cameras and the video wall (docs/video.md): a camera's status and latest snapshot, taking
a snapshot through its agent, and putting a camera on a wall window by name."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from api.deps import (
    Caller,
    Conn,
    allow,
    audit_detail,
    check_department,
    client_address,
    get_pool,
)
from api.middleware import write_audit_conn
from api.queries import readings as rq
from api.routes.commands import commander
from api.routes.devices import typed_value
from api.schemas.cameras import (
    CameraLink,
    CameraStatus,
    SnapshotInfo,
    WallInput,
    WallInputIn,
    WallWindowIn,
)
from api.schemas.commands import Command
from api.services import cameras as svc
from cityops.errors import InvalidInput, NotFound
from cityops.principal import Role
from cityops.wire import ID_PATTERN
from spatial import cameras

router = APIRouter(tags=["video"])
CameraKey = Annotated[str, Path(min_length=1, max_length=200, examples=["cam-0001"],
                                description="the camera's id, its device's id or its name")]
WallKey = Annotated[str, Path(pattern=ID_PATTERN, examples=["wall-01"])]
Number = Annotated[int, Path(ge=1, le=1024)]
WATCHERS = allow(Role.OPERATOR, Role.DISPATCHER, Role.OPS_ENGINEER, Role.FIELD_TECHNICIAN,
                 Role.DEPARTMENT_STAFF)
LOOKERS = allow(Role.OPERATOR, Role.DISPATCHER)  # take a new picture from the camera
ENGINEERS = allow(Role.OPS_ENGINEER)
OPERATORS = allow(Role.OPERATOR)


def _snapshot_url(camera: str) -> str:
    return f"/v1/cameras/{camera}/snapshot"


@router.get("/v1/cameras/{camera}", response_model=CameraStatus, dependencies=[WATCHERS])
async def camera_status(camera: CameraKey, conn: Conn, caller: Caller) -> dict:
    """The camera on the map, its ONVIF device's state and latest values, its last snapshot."""
    row = await cameras.resolve(conn, camera)
    check_department(caller, row["department"], f"camera {camera!r}")
    points, state, snap = {}, None, None
    if row["device"]:
        points = {r["point"]: typed_value(r["data_type"], r["value"])
                  for r in await rq.latest(conn, row["device"])}
        cur = await conn.execute(
            "SELECT g.last_status->'devices'->>d.id FROM devices d"
            " JOIN gateways g ON g.id = d.gateway_id WHERE d.id = %s", (row["device"],))
        state = (await cur.fetchone() or [None])[0]
        snap = await cameras.snapshot(conn, row["device"], with_image=False)
        if snap is not None:
            snap["url"] = _snapshot_url(row["id"])
    return {**row, "points": points, "state": state, "snapshot": snap}


@router.put("/v1/cameras/{camera}/device", response_model=CameraStatus,
            dependencies=[ENGINEERS])
async def link_camera(camera: CameraKey, body: CameraLink, conn: Conn, caller: Caller,
                      request: Request) -> dict:
    """Link the map's camera to the ONVIF device an agent polls (null unlinks)."""
    row = await cameras.resolve(conn, camera)
    check_department(caller, row["department"], f"camera {camera!r}")
    audit_detail(request, camera=row["id"], device=body.device)
    await cameras.link_device(conn, row["id"], body.device)
    return await camera_status(row["id"], conn, caller)


async def _linked(conn: Conn, caller: Caller, camera: str) -> dict:
    row = await cameras.resolve(conn, camera)
    check_department(caller, row["department"], f"camera {camera!r}")
    if not row["device"]:
        raise InvalidInput(f"camera {row['id']!r} is linked to no ONVIF device "
                           f"(PUT /v1/cameras/{row['id']}/device)")
    return row


@router.post("/v1/cameras/{camera}/snapshot", response_model=SnapshotInfo,
             dependencies=[LOOKERS],
             responses={502: {"description": "the camera refused or offers no snapshot"},
                        503: {"description": "no answer from its gateway in time"}})
async def take_snapshot(camera: CameraKey, caller: Caller, request: Request) -> dict:
    """Ask the camera (through its agent) for a snapshot and keep it as its latest."""
    pool = get_pool(request)
    async with pool.connection() as conn:  # not held while the camera answers
        row = await _linked(conn, caller, camera)
    audit_detail(request, camera=row["id"], device=row["device"])
    info = await svc.take_snapshot(pool, commander(request), caller.name, row["device"])
    return {**info, "url": _snapshot_url(row["id"])}


@router.get("/v1/cameras/{camera}/snapshot", dependencies=[WATCHERS],
            response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
async def get_snapshot(camera: CameraKey, conn: Conn, caller: Caller,
                       request: Request) -> Response:
    """The camera's latest snapshot. Looking at video is audited like a change."""
    row = await _linked(conn, caller, camera)
    snap = await cameras.snapshot(conn, row["device"])
    if snap is None:
        raise NotFound(f"camera {row['id']!r} has no snapshot yet (POST to take one)")
    await write_audit_conn(
        conn, actor=caller.name, actor_kind=caller.kind, role=caller.role.value,
        action="GET /v1/cameras/{camera}/snapshot", target=row["id"],
        source=client_address(request), outcome="ok", status=200,
        detail={"device": row["device"], "command": str(snap["command"])})
    return Response(bytes(snap["image"]), media_type=snap["content_type"],
                    headers={"Cache-Control": "no-store"})


@router.get("/v1/walls/{wall}/inputs", response_model=list[WallInput],
            dependencies=[allow(Role.OPERATOR, Role.OPS_ENGINEER, Role.FIELD_TECHNICIAN)])
async def list_wall_inputs(wall: WallKey, conn: Conn) -> list[dict]:
    return await cameras.wall_inputs(conn, wall)


@router.put("/v1/walls/{wall}/inputs/{input_no}", response_model=list[WallInput],
            dependencies=[ENGINEERS])
async def map_wall_input(wall: WallKey, input_no: Number, body: WallInputIn, conn: Conn,
                         caller: Caller, request: Request) -> list[dict]:
    """Say which camera's decoder feeds this input of the wall controller (or matrix)."""
    await svc.window_point(conn, wall, 1)  # a wall: it has windows
    row = await cameras.resolve(conn, body.camera)
    check_department(caller, row["department"], f"camera {body.camera!r}")
    audit_detail(request, wall=wall, input=input_no, camera=row["id"])
    await cameras.set_wall_input(conn, wall, input_no, row["id"], caller.name)
    return await cameras.wall_inputs(conn, wall)


@router.post("/v1/walls/{wall}/windows/{window}/camera", response_model=Command,
             status_code=202, dependencies=[OPERATORS])
async def camera_to_window(wall: WallKey, window: Number, body: WallWindowIn, conn: Conn,
                           caller: Caller, request: Request) -> dict:
    """Put a camera (by id, device or name) on a wall window: the wall's window source is
    switched to the camera's input, as a command; follow it with GET /v1/commands/{id}."""
    row = await cameras.resolve(conn, body.camera)
    check_department(caller, row["department"], f"camera {body.camera!r}")
    point = await svc.window_point(conn, wall, window)
    input_no = await cameras.input_of(conn, wall, row["id"])
    audit_detail(request, wall=wall, window=window, camera=row["id"], input=input_no)
    await conn.commit()
    command = await commander(request).submit(caller.name, wall,
                                              {"point": point, "value": input_no}, body.ttl_s)
    audit_detail(request, command=str(command["id"]))
    return command
