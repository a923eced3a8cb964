"""Commands from cityops/v1/{gateway}/commands/{id}: check, perform, read back, report.

Each command id is recorded durably (in the queue's SQLite file) before anything is done, so
a redelivered command is never executed twice: its stored result is published again instead.
A command found recorded without a result was cut off by a crash or restart; it is reported
failed ("outcome unknown"), never repeated, since the write may or may not have happened.
Results are stored before they are published and republished on every new broker session
until one is acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from cityops import wire
from cityops.errors import DeviceError, WireError
from cityops.running import cancel_until_done
from edge_agents.driver import Driver, method_values
from edge_agents.points import WIRE_INT_MAX, WIRE_INT_MIN, Method
from edge_agents.queue import LocalQueue

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], Awaitable[bool]]
"""Publish (command id, result payload); True once the broker acknowledged it."""


def _now_ms() -> int:
    return int(time.time() * 1000)


def parse_command(raw: bytes) -> wire.WriteCommand | wire.MethodCommand:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise WireError(f"not JSON: {err}", reason="invalid_json") from err
    model = wire.MethodCommand if isinstance(body, dict) and "method" in body else wire.WriteCommand
    return wire.decode(model, raw)


def _device_of(raw: bytes) -> str | None:
    try:
        return parse_command(raw).device
    except WireError:
        return None  # rejected on its own, in no device's line


def same_value(expected: Any, readback: Any, tolerance: float) -> bool:
    """`tolerance`: how far an integer point's read-back may be off (half a scaled step)."""
    if isinstance(expected, bool) or isinstance(readback, bool):
        return isinstance(expected, bool) and isinstance(readback, bool) and expected == readback
    if isinstance(expected, str):
        return expected == readback
    if not isinstance(readback, int | float):
        return False
    if isinstance(expected, int) and isinstance(readback, int):
        # exact: a relative tolerance would call 123456789012345680 the same as ...678
        return abs(expected - readback) <= tolerance * (1 + 1e-9)
    # a float32 stores about 7 digits; a scaled integer point the nearest step
    return math.isclose(expected, readback, rel_tol=1e-6, abs_tol=tolerance * (1 + 1e-9))


class CommandExecutor:
    def __init__(
        self, queue: LocalQueue, drivers: Callable[[str], Driver | None], publish: Publish
    ) -> None:
        self.queue = queue
        self.drivers = drivers
        self.publish = publish
        self.counts: dict[str, int] = {}
        self._tails: dict[str, asyncio.Task] = {}  # each device's latest command
        self._tasks: set[asyncio.Task] = set()
        self._running: set[str] = set()

    def submit(self, command_id: str, raw: bytes) -> None:
        """Called for each message on the commands topic, in the broker's order; runs the
        command in its own task, chained after the device's previous command. The chain is
        made here, synchronously, because any await before taking a lock (the queue's
        seen-check) lets a later command overtake an earlier one."""
        device = _device_of(raw)
        previous = self._tails.get(device) if device else None
        task = asyncio.get_running_loop().create_task(self._after(previous, command_id, raw))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if device:
            self._tails[device] = task
            task.add_done_callback(lambda done: self._forget(device, done))

    def _forget(self, device: str, done: asyncio.Task) -> None:
        if self._tails.get(device) is done:  # no later command of the device chained on it
            del self._tails[device]

    async def _after(self, previous: asyncio.Task | None, command_id: str, raw: bytes) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # its outcome is its own; only its end matters
        await self.handle(command_id, raw)

    async def handle(self, command_id: str, raw: bytes) -> None:
        seen, stored = await self.queue.command_seen(command_id)
        if seen:
            if stored is None:
                # in flight right now (the first delivery will report), or cut off by a crash
                if command_id in self._running:
                    return
                stored = self._encode(wire.CommandStatus.FAILED,
                                      "interrupted by an agent restart; outcome unknown, "
                                      "not repeated")
                await self.queue.command_done(command_id, stored)
            log.info("command %s delivered again: result resent, not executed", command_id)
            await self._report(command_id, stored)
            return
        self._running.add(command_id)
        try:
            status, detail, readback = await self._execute(raw)
        finally:
            self._running.discard(command_id)
        self.counts[status.value] = self.counts.get(status.value, 0) + 1
        log.info("command %s: %s %s", command_id, status.value, detail)
        result = self._encode(status, detail, readback)
        await self.queue.command_done(command_id, result)
        await self._report(command_id, result)

    async def _execute(self, raw: bytes) -> tuple[wire.CommandStatus, str, Any]:
        try:
            command = parse_command(raw)
        except WireError as err:
            return wire.CommandStatus.REJECTED, f"invalid command: {err.detail}", None
        if command.expires_at < _now_ms():
            return wire.CommandStatus.EXPIRED, "expired before it could be executed", None
        driver = self.drivers(command.device)
        if driver is None:
            return wire.CommandStatus.REJECTED, f"unknown device {command.device}", None
        if isinstance(command, wire.WriteCommand):
            return await self._write(driver, command)
        return await self._call(driver, command)

    async def _write(
        self, driver: Driver, command: wire.WriteCommand
    ) -> tuple[wire.CommandStatus, str, Any]:
        try:
            point = driver.profile.point(command.point)
        except KeyError:
            return wire.CommandStatus.REJECTED, f"unknown point {command.point}", None
        why = point.check_write(command.value)
        if why is not None:
            return wire.CommandStatus.REJECTED, why, None
        try:
            readback = await driver.write(command.point, command.value)
        except DeviceError as err:
            return wire.CommandStatus.FAILED, f"{err.code}: {err.detail}", None
        step = 0.0 if point.data_type.is_float else abs(point.scale) / 2
        if not same_value(command.value, readback, step):
            return wire.CommandStatus.FAILED, f"wrote {command.value!r}, read back {readback!r}", \
                readback
        return wire.CommandStatus.SUCCEEDED, "written and read back", readback

    async def _call(
        self, driver: Driver, command: wire.MethodCommand
    ) -> tuple[wire.CommandStatus, str, Any]:
        try:
            method = driver.profile.method(command.method)
        except KeyError:
            return wire.CommandStatus.REJECTED, f"unknown method {command.method}", None
        why = check_args(driver, method, command.args)
        if why is not None:
            return wire.CommandStatus.REJECTED, why, None
        try:
            readback = await driver.call(method, command.args)
        except DeviceError as err:
            return wire.CommandStatus.FAILED, f"{err.code}: {err.detail}", None
        return wire.CommandStatus.SUCCEEDED, f"method {method.name} done", readback

    def _encode(self, status: wire.CommandStatus, detail: str, readback: Any = None) -> bytes:
        if readback is not None and not isinstance(readback, bool | int | float | str):
            readback = str(readback)
        if isinstance(readback, float) and not math.isfinite(readback):
            readback = None
        return wire.encode(
            wire.CommandResult(status=status, detail=detail[:500], readback=readback,
                               ts=_now_ms())
        )

    async def _report(self, command_id: str, result: bytes) -> None:
        if await self.publish(command_id, result):
            await self.queue.command_published(command_id)

    async def republish(self) -> None:
        """Send results whose publish was never acknowledged (after a broker outage)."""
        for command_id, result in await self.queue.unpublished_results():
            if not await self.publish(command_id, result):
                return
            await self.queue.command_published(command_id)

    async def close(self) -> None:
        # a command's write can swallow one cancel as a poll can (cancel_until_done)
        await cancel_until_done(list(self._tasks))


def check_args(driver: Driver, method: Method, args: dict[str, Any]) -> str | None:
    """Why a method call's arguments are unacceptable, or None."""
    known = {a.name: a for a in method.args}
    unknown = sorted(set(args) - set(known))
    if unknown:
        return f"method {method.name}: unknown arguments {unknown}"
    for arg in method.args:
        if arg.name not in args:
            return f"method {method.name}: argument {arg.name} is missing"
        value = args[arg.name]
        if arg.data_type.is_numeric:
            if (isinstance(value, bool) or not isinstance(value, int | float)
                    or (isinstance(value, float) and not math.isfinite(value))):
                return f"argument {arg.name} takes a number"
            if isinstance(value, int) and not WIRE_INT_MIN <= value <= WIRE_INT_MAX:
                return f"argument {arg.name}: {value} is an integer wider than 64 bits"
            if arg.range is not None and (why := arg.range.check(value)):
                return f"argument {arg.name}: {why}"
    for point_name, value in method_values(method, args) if not method.call else []:
        why = driver.profile.point(point_name).check_write(value)
        if why is not None:
            return f"method {method.name}: {why}"
    return None
