"""GET /v1/live: Server-Sent Events of readings of chosen devices, alarms and command results.

Events: `reading` (a point's latest value changed: device, point, time, value, quality),
`alarm` (an alarm step, as ingestion publishes it), `command` (a command changed state),
`event` (a city event reported or changed: its state, light and point; migration 083).
A comment line every `heartbeat_s` keeps proxies from closing a quiet stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from psycopg_pool import AsyncConnectionPool

from api.deps import AnyRole, Caller, check_department, get_pool
from api.queries import readings as q
from api.routes.devices import QUALITIES, typed_value
from api.routes.events import READERS as EVENT_READERS
from api.services.live import LiveHub
from cityops.errors import Forbidden, InvalidInput, NotFound
from cityops.principal import Principal, Role
from cityops.wire import ID_PATTERN

router = APIRouter(tags=["live"])
HEARTBEAT_S = 15.0
_ID = re.compile(ID_PATTERN)
FOLLOWERS = frozenset({Role.ADMIN, Role.OPERATOR, Role.FIELD_TECHNICIAN})
ALARM_READERS = FOLLOWERS | {Role.DISPATCHER, Role.VIEWER, Role.DEPARTMENT_STAFF}
EVENT_FOLLOWERS = frozenset({Role.ADMIN, *EVENT_READERS})


def _sse(event: str, body: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(body, default=str) + b"\n\n"


async def _latest_changes(pool: AsyncConnectionPool, devices: list[str],
                          seen: dict[tuple[str, str], Any]) -> list[bytes]:
    async with pool.connection() as conn:
        rows = await q.latest_many(conn, devices)
    out = []
    for r in rows:
        key = (r["device"], r["point"])
        if r["time"] is None or seen.get(key) == r["time"]:
            continue
        seen[key] = r["time"]
        out.append(_sse("reading", {
            "device": r["device"], "point": r["point"], "unit": r["unit"], "time": r["time"],
            "value": typed_value(r["data_type"], r["value"]),
            "quality": QUALITIES[r["quality"]],
        }))
    return out


class _DepartmentFilter:
    """Commands and alarms of the caller's departments only: each event names its device,
    whose department is looked up once per stream (a device's department rarely changes, and
    a stream that outlives such a change is reopened by the console anyway)."""

    def __init__(self, pool: AsyncConnectionPool, caller: Principal) -> None:
        self.pool, self.caller = pool, caller
        self.known: dict[str, str | None] = {}

    async def admits(self, event: dict[str, Any]) -> bool:
        if self.caller.departments is None or event.get("kind") == "event":
            return True  # city events: the county-wide case board of the event roles
        device = str(event.get("device", ""))
        if device not in self.known:
            self.known[device] = None  # a device removed since: no department, not shown
            with contextlib.suppress(NotFound):
                async with self.pool.connection() as conn:
                    self.known[device] = await q.device_exists(conn, device)
        return self.caller.sees_department(self.known[device])


async def _stream(request: Request, hub: LiveHub, kinds: frozenset[str], devices: list[str],
                  interval_s: float, caller: Principal) -> AsyncIterator[bytes]:
    pool = get_pool(request)
    scope = _DepartmentFilter(pool, caller)
    seen: dict[tuple[str, str], Any] = {}
    loop = asyncio.get_running_loop()
    next_poll = next_beat = loop.time()
    async with hub.subscribe(kinds) as sub:
        yield b": connected\n\n"
        while True:
            now = loop.time()
            if devices and now >= next_poll:
                for chunk in await _latest_changes(pool, devices, seen):
                    yield chunk
                next_poll = now + interval_s
            if now >= next_beat:
                yield b": keep-alive\n\n"
                next_beat = now + HEARTBEAT_S
            wait = max(0.0, min(next_poll if devices else next_beat, next_beat) - loop.time())
            with contextlib.suppress(TimeoutError):
                event = await asyncio.wait_for(sub.queue.get(), wait)
                if await scope.admits(event):
                    yield _sse(event["kind"], event)


def _check_kinds(caller: Principal, commands: bool, alarms: bool,
                 events: bool = False) -> frozenset[str]:
    kinds = set()
    if events:
        if caller.role not in EVENT_FOLLOWERS:
            raise Forbidden(f"role {caller.role.value} may not follow city events")
        kinds.add("event")
    if commands:
        if caller.role not in FOLLOWERS:
            raise Forbidden(f"role {caller.role.value} may not follow commands")
        kinds.add("command")
    if alarms:
        if caller.role not in ALARM_READERS:
            raise Forbidden(f"role {caller.role.value} may not follow alarms")
        kinds.add("alarm")
    return frozenset(kinds)


@router.get(
    "/v1/live", dependencies=[AnyRole], response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "events: reading, alarm, command, event"}},
)
async def live(
    request: Request, caller: Caller,
    device: Annotated[list[str], Query(max_length=50, description="devices whose readings to "
                                       "follow (repeat the parameter)")] = [],  # noqa: B006
    commands: Annotated[bool, Query(description="command state changes")] = False,
    alarms: Annotated[bool, Query(description="alarm steps")] = False,
    events: Annotated[bool, Query(description="city events reported or changed")] = False,
    interval_s: Annotated[float, Query(ge=0.2, le=60)] = 1.0,
) -> StreamingResponse:
    kinds = _check_kinds(caller, commands, alarms, events)
    # a pooled connection only for the checks: the stream may last for hours
    async with get_pool(request).connection() as conn:
        for name in device:
            if not _ID.match(name):
                raise InvalidInput(f"device: {name!r} is not a device id")
            check_department(caller, await q.device_exists(conn, name), f"device {name!r}")
    hub: LiveHub = request.app.state.hub
    return StreamingResponse(
        _stream(request, hub, kinds, list(dict.fromkeys(device)), interval_s, caller),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
