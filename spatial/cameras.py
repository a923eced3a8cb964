"""Cameras (docs/video.md): the map's camera register (facilities of kind 'camera') linked
to ONVIF camera devices, their latest snapshot, and which video-wall input carries which
camera. SQL only; the API orchestrates commands around it (api/services/cameras.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityops.errors import Conflict, InvalidInput, NotFound

# platform_status: ON/OFF as a GB/T 28181 platform's catalogue last said (spatial/gb28181.py)
_CAMERA = ("SELECT id, name, code, department_id AS department, device_id AS device, longitude,"
           " latitude, attributes->>'status' AS platform_status FROM facilities"
           " WHERE kind = 'camera'")


async def resolve(conn: AsyncConnection, key: str) -> dict[str, Any]:
    """A camera by its id, its linked device's id, or its name (which must be unique)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"{_CAMERA} AND (id = %(k)s OR device_id = %(k)s)"
                          " ORDER BY id = %(k)s DESC LIMIT 1", {"k": key})
        row = await cur.fetchone()
        if row is not None:
            return row
        await cur.execute(f"{_CAMERA} AND name = %s ORDER BY id LIMIT 2", (key,))
        rows = await cur.fetchall()
    if not rows:
        raise NotFound(f"camera {key!r} not found (by id, device or name)")
    if len(rows) > 1:
        raise InvalidInput(f"camera name {key!r} is not unique: give its id "
                           f"({rows[0]['id']}, {rows[1]['id']}, ...)")
    return rows[0]


async def link_device(conn: AsyncConnection, camera: str, device: str | None) -> None:
    """Link a camera of the map to an ONVIF camera device (None: unlink)."""
    if device is not None:
        cur = await conn.execute(
            "SELECT pr.protocol FROM devices d JOIN profiles pr ON pr.id = d.profile_id"
            " WHERE d.id = %s", (device,))
        row = await cur.fetchone()
        if row is None:
            raise InvalidInput(f"device: {device!r} is not registered")
        if row[0] != "onvif":
            raise InvalidInput(f"device: {device!r} speaks {row[0]}, not ONVIF")
        cur = await conn.execute("SELECT id FROM facilities WHERE device_id = %s AND id <> %s",
                                 (device, camera))
        if (other := await cur.fetchone()) is not None:
            raise Conflict(f"device {device!r} is already linked to camera {other[0]!r}")
    await conn.execute("UPDATE facilities SET device_id = %s, updated_at = now()"
                       " WHERE id = %s AND kind = 'camera'", (device, camera))


async def store_snapshot(conn: AsyncConnection, device: str, command: uuid.UUID | str,
                         actor: str, image: bytes) -> datetime:
    """Keep the camera's latest snapshot (the previous one is replaced)."""
    cur = await conn.execute(
        "INSERT INTO camera_snapshots (device_id, command_id, taken_by, image)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (device_id) DO UPDATE SET"
        " command_id = EXCLUDED.command_id, taken_by = EXCLUDED.taken_by,"
        " image = EXCLUDED.image, taken_at = now() RETURNING taken_at",
        (device, command, actor, image))
    row = await cur.fetchone()
    assert row is not None
    return row[0]


async def snapshot(conn: AsyncConnection, device: str, with_image: bool = True
                   ) -> dict[str, Any] | None:
    image = "image" if with_image else "NULL AS image"
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {image}, content_type, taken_at, taken_by, command_id AS command,"
            " octet_length(image) AS bytes FROM camera_snapshots WHERE device_id = %s",
            (device,))
        return await cur.fetchone()


async def set_wall_input(conn: AsyncConnection, wall: str, input_no: int, camera: str,
                         actor: str) -> None:
    await conn.execute("DELETE FROM wall_inputs WHERE wall_id = %s AND camera_id = %s",
                       (wall, camera))
    await conn.execute(
        "INSERT INTO wall_inputs (wall_id, input, camera_id, updated_by) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (wall_id, input) DO UPDATE SET camera_id = EXCLUDED.camera_id,"
        " updated_by = EXCLUDED.updated_by, updated_at = now()",
        (wall, input_no, camera, actor))


async def wall_inputs(conn: AsyncConnection, wall: str) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT w.input, w.camera_id AS camera, f.name AS camera_name, f.device_id AS device,"
            " w.updated_by, w.updated_at FROM wall_inputs w JOIN facilities f"
            " ON f.id = w.camera_id WHERE w.wall_id = %s ORDER BY w.input", (wall,))
        return await cur.fetchall()


async def input_of(conn: AsyncConnection, wall: str, camera: str) -> int:
    cur = await conn.execute("SELECT input FROM wall_inputs WHERE wall_id = %s"
                             " AND camera_id = %s", (wall, camera))
    row = await cur.fetchone()
    if row is None:
        raise InvalidInput(f"camera: {camera!r} is on no input of wall {wall!r}; map it first "
                           f"(PUT /v1/walls/{wall}/inputs/{{input}})")
    return int(row[0])
