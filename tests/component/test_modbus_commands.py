"""Commands on a one-request-at-a-time Modbus device that is being polled: the write and its
read-back slot in between two polls, never inside one, and the device never sees two requests
at once. Timeouts and exception codes come back as such."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from pymodbus.constants import ExcCodes

from cityops.errors import DeviceRejected, DeviceUnreachable
from edge_agents.config import DeviceConfig
from edge_agents.devices import DeviceRunner
from edge_agents.driver import DriverFactory
from edge_agents.profiles import parse_profile
from simulators.modbus_device import make_context, serve
from tests.helpers import await_for, free_port, port_open, stop_task

PROFILE = {
    "model": "one-at-a-time", "category": "power", "protocol": "modbus",
    "points": [
        {"name": "voltage", "data_type": "float32",
         "address": {"table": "input_register", "offset": 0, "order": "CDAB"},
         "simulate": {"kind": "sine", "mean": 230, "amplitude": 5, "period_s": 5}},
        {"name": "energy", "data_type": "uint32",
         "address": {"table": "input_register", "offset": 300}},
        {"name": "limit", "data_type": "uint16", "writable": True, "range": {"min": 0, "max": 500},
         "address": {"table": "holding_register", "offset": 10}},
        {"name": "relay", "data_type": "bool", "writable": True,
         "address": {"table": "coil", "offset": 0}},
    ],
}
# one poll: coil 0, holding 10, input 0, input 300 (too far apart to bridge)
POLL = [(1, 0), (3, 10), (4, 0), (4, 300)]
WRITE = [(16, 10), (3, 10)]  # write the register, then the read-back


@contextlib.asynccontextmanager
async def device(profile, port: int, delay_s: float):
    context = make_context(profile)
    context.delay_s = delay_s
    task = asyncio.create_task(serve(profile, "127.0.0.1", port, context=context, tick_s=0.05))
    await await_for(lambda: asyncio.to_thread(port_open, port), what="simulator")
    try:
        yield context
    finally:
        await stop_task(task)


def _runner(profile, port: int, factory: DriverFactory, timeout_s: float = 1.0):
    config = DeviceConfig.model_validate({
        "id": "dev", "profile": "x", "poll_interval_s": 0.005, "timeout_s": timeout_s,
        "endpoint": {"host": "127.0.0.1", "port": port}})
    driver = factory.create(config, profile)
    polls: list = []
    return DeviceRunner(config, profile, driver, polls.append, lambda *_: None), driver, polls


async def test_commands_slot_in_between_polls_never_inside_one() -> None:
    profile, port = parse_profile(PROFILE, "p"), free_port()
    factory = DriverFactory()
    async with device(profile, port, delay_s=0.005) as ctx:
        runner, driver, polls = _runner(profile, port, factory)
        task = asyncio.create_task(runner.run())
        await await_for(lambda: _true(len(polls) >= 3), what="polling")
        ctx.record = True
        values = [11, 22, 33, 44, 55]
        readbacks = []
        for value in values:  # commands arriving while the device is being polled
            readbacks.append(await driver.write("limit", value))
            await asyncio.sleep(0.003)
        await await_for(lambda: _true(len(ctx.requests) > 40), what="more polls")
        ctx.record = False
        await stop_task(task)
    factory.close()
    assert readbacks == values
    assert ctx.max_active == 1, "the device never saw two requests at once"
    # strip whole polls and whole write+read-back pairs: nothing may be left over
    log = ctx.requests
    i = next(i for i in range(len(log)) if log[i : i + 4] == POLL or log[i : i + 2] == WRITE)
    assert i < 4, "recording started inside the first poll at most"
    writes = 0
    while i < len(log):
        if log[i : i + 4] == POLL:
            i += 4
        elif log[i : i + 2] == WRITE:
            writes, i = writes + 1, i + 2
        elif log[i:] == POLL[: len(log) - i]:
            break  # recording stopped inside the last poll
        else:
            pytest.fail(f"a request sequence interleaved a poll and a command: {log[i:i + 6]}")
    assert writes == len(values)


async def test_timeout_is_reported_and_the_connection_recovers() -> None:
    profile, port = parse_profile(PROFILE, "p"), free_port()
    factory = DriverFactory()
    async with device(profile, port, delay_s=0.0) as ctx:
        _r, driver, _p = _runner(profile, port, factory, timeout_s=0.2)
        assert len(await driver.read()) == 4
        ctx.delay_s = 1.0
        with pytest.raises(DeviceUnreachable):
            await driver.read()
        ctx.delay_s = 0.0
        assert len(await driver.read()) == 4
    factory.close()


async def test_exception_code_is_reported_as_such() -> None:
    profile, port = parse_profile(PROFILE, "p"), free_port()
    factory = DriverFactory()
    async with device(profile, port, delay_s=0.0) as ctx:
        _r, driver, _p = _runner(profile, port, factory)
        ctx.exceptions[(4, 300)] = ExcCodes.DEVICE_BUSY
        with pytest.raises(DeviceRejected, match=r"exception 6 \(server device busy\)") as err:
            await driver.read()
        assert err.value.context["exception_code"] == 6
        ctx.exceptions.clear()
        assert len(await driver.read()) == 4, "an exception does not cost the connection"
    factory.close()


async def _true(value: bool) -> bool:
    return value
