"""The OPC-UA driver against the profile-driven asyncua simulator, over real loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from asyncua import Client, ua

from cityops.errors import DeviceAuthRefused, DeviceRejected, DeviceUnreachable
from edge_agents.config import DeviceConfig
from edge_agents.devices import DeviceRunner
from edge_agents.drivers.opcua.config import OpcUaEndpoint
from edge_agents.drivers.opcua.driver import OpcUaDriver
from edge_agents.profiles import load_profile, parse_profile
from simulators.opcua_server import OpcUaSimulator
from tests.helpers import await_for, free_port, port_open, stop_task

TYPES = ["bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64",
         "string"]
SAMPLES = {"bool": True, "int16": -1234, "uint16": 60000, "int32": -123456789,
           "uint32": 3_000_000_000, "int64": -(2**40) - 5, "uint64": 2**50 + 3,
           "float32": 12.5, "float64": -0.001, "string": "WALL-1"}
ALL_TYPES = {
    "model": "opcua-all-types", "category": "environment", "protocol": "opcua",
    "points": [{"name": f"p_{t}", "data_type": t, "writable": True,
                "address": {"node": f"ns=2;s=all.{t}"}} for t in TYPES]
    + [{"name": "scaled", "data_type": "int32", "writable": True, "scale": 0.1, "offset": -40,
        "range": {"min": -40, "max": 100}, "address": {"node": "ns=2;s=all.scaled"}},
       {"name": "moving", "data_type": "float64", "address": {"node": "ns=2;i=5001"},
        "simulate": {"kind": "ramp", "mean": 0, "amplitude": 1000, "period_s": 10}}],
    "methods": [{"name": "set_scaled", "args": [{"name": "v", "data_type": "int32"}],
                 "call": {"object": "ns=2;s=all", "method": "ns=2;s=all.set_scaled"},
                 "writes": [{"point": "p_int32", "arg": "v"}]}],
}


@contextlib.asynccontextmanager
async def simulator(profile, port: int, **kwargs):
    sim = OpcUaSimulator(profile, "127.0.0.1", port, tick_s=0.1, **kwargs)
    task = asyncio.create_task(sim.serve())
    await await_for(lambda: asyncio.to_thread(port_open, port), what="opc-ua simulator")
    try:
        yield sim
    finally:
        await stop_task(task)


def endpoint(port: int, **extra) -> OpcUaEndpoint:
    return OpcUaEndpoint.model_validate(
        {"protocol": "opcua", "url": f"opc.tcp://127.0.0.1:{port}/cityops/",
         "publishing_interval_ms": 100, "sampling_interval_ms": 50, **extra})


async def test_every_type_written_with_the_nodes_own_type_and_read_back() -> None:
    profile, port = parse_profile(ALL_TYPES, "all"), free_port()
    async with simulator(profile, port):
        driver = OpcUaDriver("dev", profile, endpoint(port, mode="poll"))
        await driver.connect()
        for t in TYPES:
            assert await driver.write(f"p_{t}", SAMPLES[t]) == pytest.approx(SAMPLES[t]), t
        # a float value for an Int32 node goes out as an Int32 Variant, never a Double
        assert await driver.write("p_int32", 7.0) == 7
        assert await driver.write("scaled", 21.5) == pytest.approx(21.5)
        raw = Client(f"opc.tcp://127.0.0.1:{port}/cityops/")
        async with raw:
            for t, expected in (("int32", ua.VariantType.Int32), ("uint16", ua.VariantType.UInt16),
                                ("float32", ua.VariantType.Float)):
                dv = await raw.get_node(f"ns=2;s=all.{t}").read_data_value()
                assert dv.Value.VariantType == expected
            assert await raw.get_node("ns=2;s=all.scaled").read_value() == 615  # (21.5+40)/0.1
        values = {r.point: r.value for r in await driver.read()}
        assert values["p_uint64"] == 2**50 + 3 and values["p_string"] == "WALL-1"
        assert values["p_bool"] is True and values["p_int32"] == 7
        await driver.close()


async def test_method_call_and_browse() -> None:
    profile, port = parse_profile(ALL_TYPES, "all"), free_port()
    async with simulator(profile, port) as sim:
        driver = OpcUaDriver("dev", profile, endpoint(port, mode="poll"))
        await driver.connect()
        readback = await driver.call(profile.method("set_scaled"), {"v": 4242})
        assert readback == 4242
        assert sim.calls == [("set_scaled", [4242])]
        found = {n["node"]: n for n in await driver.browse()}
        assert found["ns=2;s=all.int32"]["data_type"] == "Int32"
        assert "ns=2;i=5001" in found
        with pytest.raises(DeviceRejected):
            await driver.write("p_int32", "not a number")  # the server refuses the type
        await driver.close()


async def test_subscription_delivers_changes_and_comes_back_after_a_server_restart() -> None:
    profile, port = parse_profile(ALL_TYPES, "all"), free_port()
    device = DeviceConfig.model_validate(
        {"id": "dev", "profile": "x", "timeout_s": 1,
         "endpoint": endpoint(port, watchdog_interval_s=0.3).model_dump()})
    got: list = []
    states: list[str] = []
    driver = OpcUaDriver("dev", profile, device.endpoint, timeout_s=1)
    runner = DeviceRunner(device, profile, driver, got.extend, lambda _d, s: states.append(s))

    def moving_values() -> list:
        return [r.value for r in got if r.point == "moving" and r.value is not None]

    async with simulator(profile, port):
        task = asyncio.create_task(runner.run())
        await await_for(lambda: _true(len(set(moving_values())) >= 3), timeout_s=15,
                        what="changes through the subscription")
    await await_for(lambda: _true(runner.state == "offline"), timeout_s=15, what="offline")
    assert any(r.point == "moving" and r.quality.value == "bad" for r in got)
    seen = len(moving_values())
    async with simulator(profile, port):
        await await_for(lambda: _true(len(moving_values()) >= seen + 3), timeout_s=30,
                        what="the subscription to resume after the restart")
        assert runner.state == "online"
        await stop_task(task)
    assert states == ["online", "offline", "online"]


async def test_secure_endpoint_with_username_and_password(tmp_path: Path, monkeypatch) -> None:
    profile, port = load_profile("av/video_wall"), free_port()
    monkeypatch.setenv("WALL_PASSWORD", "s3cret-wall")
    async with simulator(profile, port, secure_dir=tmp_path / "server",
                         username="agent", password="s3cret-wall"):
        for mode in ("Sign", "SignAndEncrypt"):
            ep = endpoint(port, security_policy="Basic256Sha256", security_mode=mode,
                          certificate=str(tmp_path / "agent-cert.der"),
                          private_key=str(tmp_path / "agent-key.pem"),
                          username="agent", password_env="WALL_PASSWORD", mode="poll")
            driver = OpcUaDriver("wall", profile, ep)
            await driver.connect()
            assert {r.point for r in await driver.read()} >= {"power_on", "layout"}
            await driver.close()
        assert (tmp_path / "agent-cert.der").exists(), "the agent made its own certificate"
        wrong = endpoint(port, username="agent", password_env="NO_SUCH_VARIABLE", mode="poll")
        with pytest.raises(DeviceAuthRefused):
            await OpcUaDriver("wall", profile, wrong).connect()


async def test_refused_subscription_falls_back_to_polling_and_a_missing_node_is_bad() -> None:
    spec = dict(ALL_TYPES, points=[*ALL_TYPES["points"], {
        "name": "missing", "data_type": "float32", "address": {"node": "ns=2;s=not.there"}}])
    profile, port = parse_profile(spec, "all"), free_port()
    # the server has every point but `missing`
    async with simulator(parse_profile(ALL_TYPES, "all"), port, refuse_subscriptions=True):
        driver = OpcUaDriver("dev", profile, endpoint(port), poll_interval_s=0.1)
        assert driver.pushes
        await driver.connect()
        got: list = []
        task = asyncio.create_task(driver.subscribe(got.extend))
        await await_for(lambda: _true(len({r.value for r in got if r.point == "moving"}) >= 3),
                        what="values by polling")
        assert driver.polling_fallback
        assert {r.quality.value for r in got if r.point == "missing"} == {"bad"}
        await stop_task(task)
        await driver.close()


async def test_thousands_of_monitored_items_are_created_in_batches() -> None:
    n = 3000
    profile = parse_profile({
        "model": "many", "category": "environment", "protocol": "opcua",
        "points": [{"name": f"p{i}", "data_type": "float32", "address": {"node": f"ns=2;i={i+1}"},
                    "simulate": {"kind": "constant", "mean": i}} for i in range(n)]}, "many")
    port = free_port()
    async with simulator(profile, port):
        driver = OpcUaDriver("many", profile, endpoint(port, batch_size=500))
        await driver.connect()
        got: dict[str, float] = {}
        task = asyncio.create_task(driver.subscribe(lambda rs: got.update(
            {r.point: r.value for r in rs})))
        await await_for(lambda: _true(len(got) == n), timeout_s=30, what="every initial value")
        assert driver.items_created == n
        assert got["p2999"] == 2999
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, DeviceUnreachable):
            await task
        await driver.close()


async def _true(value: bool) -> bool:
    return value
