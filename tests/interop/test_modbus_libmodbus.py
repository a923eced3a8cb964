"""The Modbus driver against a server on libmodbus (C, Debian's libmodbus-dev): every data type
in every word order encoded by C code, typed writes decoded again by the C server (float32 by
libmodbus's own getters), libmodbus's illegal-address exceptions, and a restart mid-run."""

from __future__ import annotations

import asyncio
import math
import re
import shutil
import struct
import subprocess
from pathlib import Path

import orjson
import pytest

from cityops import wire
from cityops.errors import DeviceRejected
from edge_agents.commands import CommandExecutor
from edge_agents.config import DeviceConfig
from edge_agents.devices import DeviceRunner
from edge_agents.drivers.modbus.config import ModbusEndpoint
from edge_agents.drivers.modbus.driver import ModbusConnection, ModbusDriver
from edge_agents.profiles import parse_profile
from tests.helpers import await_for, free_port, stop_task
from tests.interop.conftest import Peer

SOURCE = Path(__file__).parent / "modbus" / "server.c"
ORDERS = ("ABCD", "BADC", "CDAB", "DCBA")
TYPES = ("int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64")
# what the C server holds at start, and what the driver writes (each the other's extremes)
HELD = {"int16": -1234, "uint16": 60000, "int32": -123456789, "uint32": 3_000_000_000,
        "int64": -(2**40) - 5, "uint64": 2**63 + 12345, "float32": 24.8,
        "float64": 6.02214076e23}
WRITTEN = {"int16": 32767, "uint16": 65534, "int32": -(2**31), "uint32": 1,
           "int64": -(2**62) + 7, "uint64": 2**64 - 2, "float32": -0.15625, "float64": math.pi}
TABLE_SIZE = 200  # registers and bits per table: beyond, libmodbus answers exception 2


def _slots() -> list[tuple[str, str, int, str, str, object]]:
    """(name, table, offset, type, order, value) of every slot the C server holds."""
    slots = []
    for table, prefix in (("input_register", "in"), ("holding_register", "hr")):
        for i, (t, o) in enumerate((t, o) for t in TYPES for o in ORDERS):
            slots.append((f"{prefix}_{t}_{o.lower()}", table, i * 4, t, o, HELD[t]))
        slots.append((f"{prefix}_label", table, 130, "string", "ABCD", "泵站 WALL-1"))
        slots.append((f"{prefix}_label_badc", table, 140, "string", "BADC", "COM2"))
    slots += [
        ("hr_flag", "holding_register", 150, "bool", "bit3", 1),
        # libmodbus 3.1.6's modbus_set_float_abcd swaps the bytes of each register on a
        # little-endian host: what a libmodbus device "sends as ABCD" reads as BADC
        ("in_set_float_abcd", "input_register", 160, "float32", "SETABCD", 24.8),
        ("relay", "coil", 5, "bool", "ABCD", 1),
        ("door", "discrete_input", 7, "bool", "ABCD", 1),
        ("in_near_end", "input_register", 190, "uint16", "ABCD", 4242),
    ]
    return slots


def _point(name: str, table: str, offset: int, data_type: str, order: str) -> dict:
    address: dict = {"table": table, "offset": offset}
    if data_type == "string":
        address.update(length=8, order=order)
    elif order.startswith("bit"):
        address["bit"] = int(order[3:])
    elif order == "SETABCD":
        address["order"] = "BADC"
    elif table not in ("coil", "discrete_input"):
        address["order"] = order
    writable = table in ("holding_register", "coil")
    return {"name": name, "data_type": data_type, "writable": writable, "address": address}


PROFILE = parse_profile({
    "model": "libmodbus-slots", "category": "environment", "protocol": "modbus",
    "points": [_point(*slot[:5]) for slot in _slots()] + [
        # 198-201 runs past the table: refused by libmodbus, read with its neighbour at 190
        {"name": "past_the_end", "data_type": "uint64",
         "address": {"table": "input_register", "offset": 198}},
        {"name": "hr_past_the_end", "data_type": "int16", "writable": True,
         "address": {"table": "holding_register", "offset": 250}}],
}, "libmodbus-slots")


@pytest.fixture(scope="module")
def server_binary(tmp_path_factory) -> Path:
    """server.c built for this run (never a committed binary): gcc + libmodbus-dev."""
    out = tmp_path_factory.mktemp("libmodbus") / "server"
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libmodbus"], check=True,
                           capture_output=True, text=True).stdout.split()
    subprocess.run([shutil.which("gcc") or "gcc", "-std=c11", "-D_DEFAULT_SOURCE", "-Wall",
                    "-Werror", "-O1", "-o", str(out), str(SOURCE), *flags], check=True)
    return out


def start_server(binary: Path, directory: Path, peers: list[Peer], port: int | None = None
                 ) -> Peer:
    slots = directory / "slots.txt"
    slots.write_text("".join(f"{n} {t} {o} {dt} {order} {int(v) if isinstance(v, bool) else v}\n"
                             for n, t, o, dt, order, v in _slots()), encoding="utf-8")
    port = port or free_port()
    peer = Peer([str(binary), str(port), str(slots), str(TABLE_SIZE)], port,
                directory / "libmodbus.log", ready="listening libmodbus")
    peers.append(peer.start())
    return peer


@pytest.fixture(scope="module")
def server(server_binary, tmp_path_factory, peers) -> Peer:
    return start_server(server_binary, tmp_path_factory.mktemp("libmodbus-run"), peers)


def driver_for(port: int) -> ModbusDriver:
    return ModbusDriver("meter", PROFILE, ModbusEndpoint(host="127.0.0.1", port=port),
                        ModbusConnection("127.0.0.1", port, timeout_s=1.0))


def _as_float32(value: float) -> float:
    return struct.unpack(">f", struct.pack(">f", value))[0]


async def test_every_type_and_order_encoded_by_c_reads_as_held(server: Peer) -> None:
    driver = driver_for(server.port)
    values = {r.point: r.value for r in await driver.read()}
    for name, table, _offset, data_type, order, held in _slots():
        if table == "holding_register" and data_type != "bool":
            continue
        expected = bool(held) if data_type == "bool" else held
        assert values[name] == expected, (name, order)
        assert type(values[name]) is type(expected), name  # an int64 never became a float
    assert values["in_set_float_abcd"] == 24.8, "libmodbus's set_float_abcd reads as BADC"
    driver.connection.close()


async def test_typed_writes_are_decoded_by_the_c_server(server: Peer) -> None:
    driver = driver_for(server.port)
    for t in TYPES:
        for o in ORDERS:
            name = f"hr_{t}_{o.lower()}"
            assert await driver.write(name, WRITTEN[t]) == pytest.approx(WRITTEN[t]), name
    assert await driver.write("hr_label", "水位 3") == "水位 3"
    assert await driver.write("hr_flag", False) is False
    assert await driver.write("relay", False) is False
    decoded = await await_for(lambda: _decoded(server, 35), what="the C server's decodings")
    for t in TYPES:
        for o in ORDERS:
            got = decoded[f"hr_{t}_{o.lower()}"]
            if t == "float32":  # libmodbus's getter for this order, printed to 9 digits
                assert _as_float32(float(got)) == WRITTEN[t], (t, o, got)
            elif t == "float64":
                assert float(got) == WRITTEN[t], (t, o, got)
            else:
                assert int(got) == WRITTEN[t], (t, o, got)
    assert decoded["hr_label"] == "水位 3"
    assert decoded["hr_flag"] == "false" and decoded["relay"] == "false"
    driver.connection.close()


async def _decoded(server: Peer, at_least: int) -> dict[str, str]:
    found = dict(re.findall(r"^wrote (\S+) (.*)$", server.output(), re.MULTILINE))
    return found if len(found) >= at_least else {}


async def test_libmodbus_illegal_address_is_one_points_error_the_device_reads_on(
        server: Peer) -> None:
    device = DeviceConfig.model_validate({
        "id": "meter", "profile": "libmodbus-slots", "poll_interval_s": 0.1, "timeout_s": 1,
        "endpoint": {"protocol": "modbus", "host": "127.0.0.1", "port": server.port}})
    driver = driver_for(server.port)
    got: list = []
    states: list[str] = []
    runner = DeviceRunner(device, PROFILE, driver, got.extend, lambda _d, s: states.append(s))
    task = asyncio.create_task(runner.run())
    try:
        await await_for(lambda: _true(any(r.point == "past_the_end" for r in got)),
                        what="a poll with the refused point")
        latest = {r.point: r for r in got}
        assert latest["past_the_end"].quality is wire.Quality.BAD
        assert latest["in_near_end"].value == 4242, "its neighbour in the refused block reads"
        assert latest["in_int64_cdab"].value == HELD["int64"]
        assert driver.refused_points == {"past_the_end", "hr_past_the_end"}
        # a write to an address libmodbus does not have: the command fails, naming the point
        executor = CommandExecutor(None, lambda _d: driver, None)  # type: ignore[arg-type]
        raw = orjson.dumps({"device": "meter", "point": "hr_past_the_end", "value": 1,
                            "expires_at": 32503680000000})
        status, detail, _ = await executor._execute(raw)
        assert status is wire.CommandStatus.FAILED
        assert "point hr_past_the_end (holding_register 250)" in detail
        assert "exception 2 (illegal data address)" in detail
        with pytest.raises(DeviceRejected, match="illegal data address"):
            await driver.write("hr_past_the_end", 2)
        seen = len(got)
        await await_for(lambda: _true(len(got) > seen), what="polls after the refusals")
        assert runner.state == "online" and states == ["online"]
        assert await driver.write("hr_int16_abcd", -7) == -7
    finally:
        await stop_task(task)
        driver.connection.close()


async def test_a_restart_of_the_libmodbus_server_mid_run(server_binary, tmp_path, peers
                                                        ) -> None:
    peer = start_server(server_binary, tmp_path, peers)
    device = DeviceConfig.model_validate({
        "id": "meter", "profile": "libmodbus-slots", "poll_interval_s": 0.1, "timeout_s": 0.5,
        "endpoint": {"protocol": "modbus", "host": "127.0.0.1", "port": peer.port}})
    driver = driver_for(peer.port)
    driver.connection.timeout_s = 0.5
    got: list = []
    states: list[str] = []
    runner = DeviceRunner(device, PROFILE, driver, got.extend, lambda _d, s: states.append(s))

    def goods() -> int:
        return sum(1 for r in got if r.point == "in_float32_cdab" and r.value == 24.8)

    task = asyncio.create_task(runner.run())
    try:
        await await_for(lambda: _true(goods() >= 1), what="readings before the restart")
        peer.stop()
        await await_for(lambda: _true(runner.state == "offline"), what="offline")
        before = goods()
        peer.start()
        await await_for(lambda: _true(goods() > before), timeout_s=15,
                        what="readings after the restart")
        assert states == ["online", "offline", "online"]
    finally:
        await stop_task(task)
        driver.connection.close()


async def _true(value: bool) -> bool:
    return value
