"""Modbus devices that misbehave in part, against the profile-driven simulator over loopback:
an address the device refuses, an answer that comes after the caller gave up, a text too long
for its registers, an integer above 2**53."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest

from cityops.errors import DecodeError, DeviceRejected, DeviceUnreachable
from edge_agents.config import DeviceConfig
from edge_agents.devices import DeviceRunner
from edge_agents.drivers.modbus import driver as driver_module
from edge_agents.drivers.modbus.codec import encode_value
from edge_agents.drivers.modbus.config import ModbusEndpoint, WordOrder
from edge_agents.drivers.modbus.driver import ModbusConnection, ModbusDriver
from edge_agents.profiles import parse_profile
from simulators.modbus_device import make_context, serve
from tests.helpers import await_for, free_port, port_open, stop_task

PROFILE = {
    "model": "partly-there", "category": "power", "protocol": "modbus",
    "points": [
        {"name": "voltage", "data_type": "float32",
         "address": {"table": "input_register", "offset": 0}},
        {"name": "current", "data_type": "uint16", "address": {"table": "input_register",
                                                               "offset": 4}},
        {"name": "frequency", "data_type": "uint16", "scale": 0.01,
         "address": {"table": "input_register", "offset": 6}},
        {"name": "a", "data_type": "uint16", "writable": True,
         "address": {"table": "holding_register", "offset": 0}},
        {"name": "b", "data_type": "uint16", "writable": True,
         "address": {"table": "holding_register", "offset": 100}},
        {"name": "label", "data_type": "string", "writable": True,
         "address": {"table": "holding_register", "offset": 200, "length": 4}},
        {"name": "counter", "data_type": "uint64", "writable": True,
         "address": {"table": "holding_register", "offset": 300, "order": "CDAB"}},
    ],
}


@contextlib.asynccontextmanager
async def device(profile):
    port = free_port()
    context = make_context(profile)
    unit = context.units[1].tables
    unit["input_register"][0:2] = encode_value(24.8, "float32", WordOrder.ABCD)
    unit["input_register"][4] = 12
    unit["input_register"][6] = 5003
    unit["holding_register"][0], unit["holding_register"][100] = 111, 222
    task = asyncio.create_task(serve(profile, "127.0.0.1", port, context=context, tick_s=0.05))
    await await_for(lambda: asyncio.to_thread(port_open, port), what="simulator")
    connection = ModbusConnection("127.0.0.1", port, timeout_s=1.0)
    driver = ModbusDriver("dev", profile, ModbusEndpoint(host="127.0.0.1", port=port), connection)
    try:
        yield context, driver
    finally:
        connection.close()
        await stop_task(task)


def _values(readings) -> dict:
    return {r.point: (r.value, r.quality.value) for r in readings}


async def test_a_refused_address_marks_only_its_points_bad(caplog) -> None:
    profile = parse_profile(PROFILE, "p")
    async with device(profile) as (ctx, driver):
        ctx.missing["input_register"] = {4}  # inside the one block 0..6 the poll asks for
        polls: list = []
        states: list = []
        config = DeviceConfig.model_validate({"id": "dev", "profile": "x",
                                              "poll_interval_s": 0.01,
                                              "endpoint": {"host": "127.0.0.1", "port": 1}})
        runner = DeviceRunner(config, profile, driver, polls.append,
                              lambda *state: states.append(state))
        with caplog.at_level(logging.INFO, logger="edge_agents"):
            task = asyncio.create_task(runner.run())
            await await_for(lambda: _true(len(polls) >= 3), what="three polls")
            await stop_task(task)
        last = _values(polls[-1])
        assert last["current"] == (None, "bad")
        assert last["voltage"] == (24.8, "good") and last["frequency"] == (50.03, "good")
        assert last["a"] == (111, "good")
        assert states == [("dev", "online")], "the device never went offline"
        refusals = [r for r in caplog.records if "refused" in r.getMessage()]
        assert len(refusals) == 1, "logged once, not every poll"
        assert "current (input_register 4, 1 registers)" in refusals[0].getMessage()
        assert "exception 2 (illegal data address)" in refusals[0].getMessage()
        assert driver.refused_points == {"current"}
        assert driver.request_count_per_poll == 4 + 3, "the refused block's 3 points alone"
        # the device gets the address back (a firmware update): the point reads again, and
        # after a while all well the points are read together again
        ctx.missing.clear()
        assert _values(await driver.read())["current"] == (12, "good")
        assert driver.refused_points == frozenset()
        driver._split_at -= driver_module.REJOIN_AFTER_S
        await driver.read()
        assert driver.request_count_per_poll == 4 + 1


async def test_a_refused_write_names_point_and_address() -> None:
    profile = parse_profile(PROFILE, "p")
    async with device(profile) as (ctx, driver):
        ctx.missing["holding_register"] = {100}
        with pytest.raises(DeviceRejected, match=r"point b \(holding_register 100\): "
                                                 r"write_registers at 100 .*exception 2"):
            await driver.write("b", 5)
        assert await driver.write("a", 7) == 7, "the rest of the device takes writes"


async def test_a_late_answer_is_not_taken_for_the_next_request() -> None:
    profile = parse_profile(PROFILE, "p")
    a, b = profile.point("a"), profile.point("b")
    async with device(profile) as (ctx, driver):
        # the caller gives up on `a` (the agent stopping a device, a deadline); the device
        # answers it after `b` was asked for: that answer is a's, never b's
        ctx.late[(3, 0)], ctx.late[(3, 100)] = 0.4, 0.8
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(driver.read_point(a), 0.1)
        assert await driver.read_point(b) == 222
        # slower than the driver's own timeout: unreachable, then each read its own value
        driver.connection.timeout_s = 0.3
        driver.connection.close()  # the next request opens a client with that timeout
        ctx.late[(3, 0)] = 0.6
        with pytest.raises(DeviceUnreachable):
            await driver.read_point(a)
        assert await driver.read_point(b) == 222
        assert await driver.read_point(a) == 111


async def test_a_poll_answered_late_records_nothing_wrong(caplog) -> None:
    """Issue #21 item 6: the first block of a poll is answered after the driver's timeout.
    That poll marks the device offline (every point bad), the late answer is never taken
    for a later request, and every other reading is the point's own value."""
    profile = parse_profile(PROFILE, "p")
    expected = {"voltage": 24.8, "current": 12, "frequency": 50.03, "a": 111, "b": 222,
                "label": "", "counter": 0}
    async with device(profile) as (ctx, driver):
        driver.connection.timeout_s = 0.3
        ctx.late[(4, 0)] = 0.6  # read input registers at 0: the poll's first request
        polls: list = []
        config = DeviceConfig.model_validate({"id": "dev", "profile": "x",
                                              "poll_interval_s": 0.05,
                                              "endpoint": {"host": "127.0.0.1", "port": 1}})
        runner = DeviceRunner(config, profile, driver, polls.append, lambda *_: None)
        with caplog.at_level(logging.DEBUG, logger="pymodbus"):
            task = asyncio.create_task(runner.run())
            # until a poll well after the late answer was sent (0.6 s after the request)
            after_ms = int((time.time() + 1.0) * 1000)
            await await_for(lambda: _true(any(r.ts_ms > after_ms for p in polls for r in p)),
                            what="polls after the late answer")
            await stop_task(task)
        values = [_values(poll) for poll in polls]
        assert values[0] == {name: (None, "bad") for name in expected}, "the late poll"
        assert len(values) > 3
        for later in values[1:]:
            assert later == {name: (value, "good") for name, value in expected.items()}
        # pymodbus' words for an answer it could not match, or one it skipped
        unmatched = [r.getMessage() for r in caplog.records
                     if "without a corresponding request" in r.getMessage()
                     or "request ask for" in r.getMessage()]
        assert unmatched == []
        assert runner.failures == 1


async def test_a_poll_hanging_past_pymodbus_time_out_ends_at_its_own_deadline(
        monkeypatch) -> None:
    """A poll's requests run under one deadline of the poll (no timer of ours per request,
    issue #21): should pymodbus' own time-out not end a request, the poll still ends,
    unreachable, with the connection closed, and the next poll reads every value again."""
    profile = parse_profile(PROFILE, "p")
    async with device(profile) as (ctx, driver):
        connection = driver.connection
        connection.timeout_s = 30.0  # pymodbus would wait this long for the answer
        monkeypatch.setattr(ModbusConnection, "backstop_s", property(lambda _self: 0.2))
        ctx.late[(4, 0)] = 3.0  # the poll's first request
        started = time.monotonic()
        with pytest.raises(DeviceUnreachable, match="did not end in time"):
            await driver.read()
        assert time.monotonic() - started < 2.0, "ended by the poll's deadline"
        assert connection._client is None, "a late answer must not reach the next request"
        assert connection._owner is None and not connection._deadline_held
        ctx.late.clear()
        values = _values(await driver.read())
        assert values["voltage"] == (24.8, "good") and values["b"] == (222, "good")
        # a command's requests keep a deadline each: they hold no poll's
        ctx.late[(3, 0)] = 3.0
        with pytest.raises(DeviceUnreachable, match="read_holding_registers at 0"):
            await driver.read_point(profile.point("a"))


async def test_an_answer_while_a_given_up_request_winds_down_is_dropped() -> None:
    """The turn between pymodbus' answer future cancelled and the connection closed: bytes
    arriving then never reach pymodbus' matching; a pending request's answer does."""
    connection = ModbusConnection("127.0.0.1", 1, timeout_s=1.0)
    pending: asyncio.Future = asyncio.get_running_loop().create_future()
    client = type("Client", (), {"ctx": type("Ctx", (), {"response_future": pending})()})()
    answer = b"\x00\x07\x00\x00\x00\x05\x01\x03\x02\x00\x6f"
    assert connection._screen(client, False, answer) == answer
    assert connection._screen(client, True, b"request") == b"request"
    pending.cancel()
    assert connection._screen(client, False, answer) == b""
    assert connection.late_answers == 1


async def test_a_text_too_long_is_refused_before_anything_is_written() -> None:
    profile = parse_profile(PROFILE, "p")
    label = profile.point("label")
    async with device(profile) as (ctx, driver):
        assert await driver.write("label", "UPS-A") == "UPS-A"
        before = ctx.units[1].tables["holding_register"][200:204]
        why = label.check_write("UPS-A-NORTH-WING")
        assert why == ("point label holds at most 8 bytes (4 registers); the text is 16 "
                       "bytes in UTF-8")
        assert "at most 8 bytes" in label.check_write("配电室三号")  # 15 bytes in UTF-8
        with pytest.raises(DecodeError, match="16 bytes of text do not fit 4 registers"):
            await driver.write("label", "UPS-A-NORTH-WING")
        assert ctx.units[1].tables["holding_register"][200:204] == before


async def test_an_int64_above_2_53_is_written_and_read_back_exactly() -> None:
    profile = parse_profile(PROFILE, "p")
    value = 123456789012345678
    async with device(profile) as (ctx, driver):
        assert await driver.write("counter", value) == value
        registers = ctx.units[1].tables["holding_register"][300:304]
        assert registers == encode_value(value, "uint64", WordOrder.CDAB)
        assert _values(await driver.read())["counter"] == (value, "good")


async def _true(value: bool) -> bool:
    return value
