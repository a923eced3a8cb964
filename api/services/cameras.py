"""Snapshots and the video wall, as commands through the existing command path.

A snapshot is the camera profile's `snapshot` method: the agent fetches the JPEG from the
camera (the API never reaches the field network) and returns it as the command's read-back
(a data: URL). The API keeps it in camera_snapshots (the latest per camera, replaced each
time) and leaves a short note in the command's read-back, so the commands table does not
grow by an image per look. Putting a camera on a wall window is a write of the wall's window
source (or a matrix output's route) to the input the camera's decoder feeds.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from api.services import commands as command_rows
from api.services.commands import Commander
from api.services.devices import profile_of
from cityops.errors import DeviceRejected, DeviceUnreachable, InvalidInput
from spatial import cameras

SNAPSHOT_TTL_S = 20.0
_PREFIX = "data:image/jpeg;base64,"
# the point a wall's window (or a matrix's output) takes its input from, by profile shape
WINDOW_POINTS = ("window_{n}_source", "output_{n}_input")


async def take_snapshot(pool: AsyncConnectionPool, commander: Commander, actor: str,
                        device: str) -> dict[str, Any]:
    """Ask the camera's agent for a snapshot, wait for it, keep it; its metadata."""
    row = await commander.submit(actor, device, {"method": "snapshot", "args": {}},
                                 SNAPSHOT_TTL_S)
    result = await _finished(pool, row["id"], SNAPSHOT_TTL_S + 10)
    if result["state"] != "succeeded":
        if result["state"] == "expired":
            raise DeviceUnreachable(f"camera {device}: no snapshot from its gateway in time")
        raise DeviceRejected(f"camera {device}: {result['state']}: {result['detail']}")
    image = _jpeg(result["readback"], device)
    async with pool.connection() as conn:
        taken_at = await cameras.store_snapshot(conn, device, row["id"], actor, image)
        await conn.execute("UPDATE commands SET readback = %s WHERE id = %s",
                           (Jsonb(f"snapshot of {len(image)} bytes kept"), row["id"]))
    return {"taken_at": taken_at, "taken_by": actor, "command": row["id"],
            "bytes": len(image)}


async def _finished(pool: AsyncConnectionPool, command: Any, within_s: float) -> dict:
    deadline = time.monotonic() + within_s
    while True:
        async with pool.connection() as conn:
            row = await command_rows.get(conn, command)
        if row["state"] in command_rows.FINAL or time.monotonic() > deadline:
            return row
        await asyncio.sleep(0.1)  # the result arrives over MQTT; its row is what we follow


def _jpeg(readback: Any, device: str) -> bytes:
    if not isinstance(readback, str) or not readback.startswith(_PREFIX):
        raise DeviceRejected(f"camera {device}: the gateway's answer is not a JPEG data URL")
    try:
        image = base64.b64decode(readback[len(_PREFIX):], validate=True)
    except binascii.Error as err:
        raise DeviceRejected(f"camera {device}: the snapshot is not valid base64") from err
    if not image.startswith(b"\xff\xd8"):
        raise DeviceRejected(f"camera {device}: the snapshot is not a JPEG")
    return image


async def window_point(conn: Any, wall: str, window: int) -> str:
    """The wall's point that selects window `window`'s input."""
    cur = await conn.execute("SELECT profile_id FROM devices WHERE id = %s", (wall,))
    row = await cur.fetchone()
    if row is None:
        raise InvalidInput(f"wall: {wall!r} is not registered")
    profile = await profile_of(conn, row[0])
    names = {p.name for p in profile.points}
    for pattern in WINDOW_POINTS:
        if (name := pattern.format(n=window)) in names:
            return name
    raise InvalidInput(f"window: wall {wall!r} ({profile.model}) has no window {window} "
                       f"(no point {' or '.join(p.format(n=window) for p in WINDOW_POINTS)})")
