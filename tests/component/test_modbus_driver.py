"""The Modbus driver against the profile-driven simulator, over real loopback sockets."""

import asyncio
import contextlib

import pytest

from cityops.errors import DeviceRejected, DeviceUnreachable
from edge_agents.drivers.modbus.config import ModbusEndpoint
from edge_agents.drivers.modbus.driver import ModbusConnection, ModbusDriver
from edge_agents.profiles import load_profile, parse_profile
from simulators.modbus_device import serve
from tests.helpers import await_for, free_port, port_open, stop_task


@contextlib.asynccontextmanager
async def simulator(profile, port: int, count: int = 1):
    task = asyncio.create_task(serve(profile, "127.0.0.1", port, count, tick_s=0.1))
    await await_for(lambda: asyncio.to_thread(port_open, port), what="simulator port")
    try:
        yield task
    finally:
        await stop_task(task)


def driver_for(profile, port: int, unit_id: int = 1, conn=None) -> ModbusDriver:
    conn = conn or ModbusConnection("127.0.0.1", port, timeout_s=1.0)
    return ModbusDriver(f"dev-{unit_id}", profile, ModbusEndpoint(
        host="127.0.0.1", port=port, unit_id=unit_id), conn)


async def test_power_meter_values_are_plausible_and_move() -> None:
    profile, port = load_profile("power/power_meter"), free_port()
    async with simulator(profile, port):
        driver = driver_for(profile, port)
        first = {r.point: r.value for r in await driver.read()}
        assert 200 < first["voltage_l1"] < 260
        assert first["breaker_closed"] is True
        # input registers 0-11 | 52-71 (gaps of 8 bridged) | 342-343, one holding, one coil
        assert driver.request_count_per_poll == 5

        async def moved() -> bool:
            now = {r.point: r.value for r in await driver.read()}
            return now["voltage_l1"] != first["voltage_l1"]

        await await_for(moved, timeout_s=5, what="a changing value")
        driver.connection.close()


ALL_TYPES = {
    "model": "all-types", "category": "environment", "protocol": "modbus",
    "points": [
        {"name": f"{t}_{o.lower()}", "data_type": t, "writable": True,
         "address": {"table": "holding_register", "offset": i * 4, "order": o}}
        for i, (t, o) in enumerate(
            (t, o) for t in ("int16", "uint16", "int32", "uint32", "int64", "uint64",
                             "float32", "float64")
            for o in ("ABCD", "BADC", "CDAB", "DCBA"))
    ] + [
        {"name": "label", "data_type": "string", "writable": True,
         "address": {"table": "holding_register", "offset": 200, "length": 8}},
        {"name": "flag_bit3", "data_type": "bool", "writable": True,
         "address": {"table": "holding_register", "offset": 210, "bit": 3}},
        {"name": "relay", "data_type": "bool", "writable": True,
         "address": {"table": "coil", "offset": 5}},
        {"name": "scaled", "data_type": "int16", "writable": True, "scale": 0.1, "offset": -40,
         "address": {"table": "holding_register", "offset": 220}},
    ],
}
SAMPLES = {"int16": -1234, "uint16": 60000, "int32": -123456789, "uint32": 3_000_000_000,
           "int64": -(2**40) - 5, "uint64": 2**50 + 3, "float32": 12.5, "float64": -0.001}


async def test_every_type_and_order_written_and_read_back() -> None:
    profile, port = parse_profile(ALL_TYPES, "all-types"), free_port()
    async with simulator(profile, port):
        driver = driver_for(profile, port)
        for point in profile.points[:32]:
            value = SAMPLES[point.data_type.value]
            assert await driver.write(point.name, value) == pytest.approx(value), point.name
        assert await driver.write("label", "WALL-1") == "WALL-1"
        assert await driver.write("flag_bit3", True) is True
        assert await driver.write("relay", True) is True
        assert await driver.write("scaled", 21.5) == pytest.approx(21.5)
        values = {r.point: r.value for r in await driver.read()}
        assert values["float64_cdab"] == pytest.approx(-0.001)
        assert values["flag_bit3"] is True
        driver.connection.close()


async def test_unknown_unit_is_reported_as_device_error() -> None:
    profile, port = load_profile("power/power_meter"), free_port()
    async with simulator(profile, port, count=1):
        driver = driver_for(profile, port, unit_id=9)
        with pytest.raises((DeviceRejected, DeviceUnreachable)):
            await driver.read()
        driver.connection.close()


async def test_several_units_share_one_connection() -> None:
    profile, port = load_profile("power/power_meter"), free_port()
    async with simulator(profile, port, count=3):
        conn = ModbusConnection("127.0.0.1", port, timeout_s=1.0)
        drivers = [driver_for(profile, port, unit, conn) for unit in (1, 2, 3)]
        results = await asyncio.gather(*(d.read() for d in drivers))
        assert all(len(r) == len(profile.points) for r in results)
        conn.close()


async def test_device_restart_mid_poll_recovers() -> None:
    profile, port = load_profile("power/power_meter"), free_port()
    driver = driver_for(profile, port)
    async with simulator(profile, port):
        assert await driver.read()
    with pytest.raises(DeviceUnreachable):
        await driver.read()
    async with simulator(profile, port):
        assert await driver.read(), "the driver reconnects by itself"
    driver.connection.close()
