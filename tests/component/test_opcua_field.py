"""What the field found with OPC-UA servers (issue #13 items 8 and 9), against one simulator
that wants a user and numbers its namespaces differently: our namespace is index 3 there,
not the 2 profiles usually assume, so the profile names it by URI (`nsu=`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from asyncua import Client

from cityops import wire
from cityops.errors import ConfigError, DeviceConfigInvalid
from edge_agents.agent import Agent
from edge_agents.config import DeviceConfig, load_agent_config
from edge_agents.devices import DeviceRunner
from edge_agents.drivers.opcua.driver import OpcUaDriver
from edge_agents.profiles import parse_profile
from simulators.opcua_server import NAMESPACE
from tests.component.test_opcua_driver import ALL_TYPES, endpoint, simulator
from tests.helpers import await_for, free_port, stop_task

PASSWORD = "field-pw"
NSU = f"nsu={NAMESPACE};"
BY_URI = parse_profile(dict(ALL_TYPES, methods=[], points=[
    dict(p, address={"node": p["address"]["node"].replace("ns=2;", NSU)})
    for p in ALL_TYPES["points"]]), "all")


@pytest.fixture(scope="module")
async def sim():
    port = free_port()
    async with simulator(BY_URI, port, username="agent", password=PASSWORD,
                         extra_namespaces=("urn:vendor:first", )) as server:
        yield server


def _endpoint(sim, **extra):
    return endpoint(sim.port, username="agent", password_env="FIELD_PW", **extra)


async def test_node_ids_by_namespace_uri_resolve_to_the_servers_index(sim, monkeypatch) -> None:
    monkeypatch.setenv("FIELD_PW", PASSWORD)
    raw = Client(sim.url)
    raw.set_user("agent")
    raw.set_password(PASSWORD)
    async with raw:  # the server numbers our namespace 3, not 2
        assert await raw.get_namespace_index(NAMESPACE) == 3
    driver = OpcUaDriver("dev", BY_URI, _endpoint(sim), timeout_s=2)
    await driver.connect()
    assert await driver.write("p_int32", -42) == -42
    got: list = []
    task = asyncio.create_task(driver.subscribe(got.extend))
    await await_for(lambda: _true(len({r.value for r in got if r.point == "moving"}) >= 2),
                    what="changes of an nsu= node through the subscription")
    await stop_task(task)
    await driver.close()
    unknown = parse_profile(dict(ALL_TYPES, methods=[], points=[
        {"name": "x", "data_type": "int32", "address": {"node": "nsu=urn:nobody;s=x"}}]), "u")
    with pytest.raises(DeviceConfigInvalid, match="the server has no namespace urn:nobody"):
        await OpcUaDriver("dev", unknown, _endpoint(sim), timeout_s=2).connect()


async def test_polling_stores_a_value_again_only_when_it_changed(sim, monkeypatch) -> None:
    monkeypatch.setenv("FIELD_PW", PASSWORD)
    ep = _endpoint(sim, mode="poll")
    device = DeviceConfig.model_validate({"id": "dev", "profile": "x", "poll_interval_s": 0.05,
                                          "endpoint": ep.model_dump(mode="json")})
    got: list = []
    runner = DeviceRunner(device, BY_URI, OpcUaDriver("dev", BY_URI, ep, timeout_s=2),
                          got.extend, lambda _d, _s: None)
    await sim.set("p_int32", 5)
    task = asyncio.create_task(runner.run())

    def seen(point: str) -> list:
        return [r.value for r in got if r.point == point]

    # many polls: the moving point took several new samples meanwhile
    await await_for(lambda: _true(len(set(seen("moving"))) >= 4), what="several polls")
    assert seen("p_int32") == [5]  # same source time, same value: one row, not one per poll
    await sim.set("p_int32", 6)
    await await_for(lambda: _true(seen("p_int32") == [5, 6]), what="the new sample")
    await stop_task(task)


async def test_a_refused_password_is_the_devices_reason_and_is_retried_slowly(
        sim, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FIELD_PW", "wrong")
    device = {"id": "wall", "profile": "av/video_wall", "timeout_s": 2,
              "endpoint": _endpoint(sim, auth_retry_s=120).model_dump(mode="json")}
    loaded = load_agent_config(_config(tmp_path, device))
    agent = Agent(loaded)
    refused = sim.users.refused
    agent._start_devices(loaded.config.devices, {"wall": BY_URI})
    runner = agent.runners["wall"]
    await await_for(lambda: _true(runner.state == "offline"), what="the device offline")
    reason = agent.status(wire.GatewayState.ONLINE).reasons["wall"]
    assert reason.startswith("device_auth_refused:") and "BadUserAccessDenied" in reason
    assert runner.retry_in_s >= 120  # not the usual backoff of a second or two
    assert sim.users.refused == refused + 1
    await agent._stop_devices()


def test_a_password_variable_that_is_not_set_fails_at_config_load(tmp_path: Path,
                                                                  monkeypatch) -> None:
    monkeypatch.delenv("NO_SUCH_PW", raising=False)
    device = {"id": "wall", "profile": "av/video_wall", "endpoint": {
        "protocol": "opcua", "url": "opc.tcp://127.0.0.1:4840/", "username": "agent",
        "password_env": "NO_SUCH_PW"}}
    path = _config(tmp_path, device)
    with pytest.raises(ConfigError, match=r"devices\.0\.endpoint\.password_env: the environment "
                                          r"variable NO_SUCH_PW is not set"):
        load_agent_config(path, check_secrets=True)
    assert load_agent_config(path).config.devices  # `registry load` reads it without secrets


def _config(tmp_path: Path, device: dict) -> Path:
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump({
        "gateway": "gw-field", "broker": {"url": "mqtt://127.0.0.1:1"},
        "queue": {"path": str(tmp_path / "queue.db")}, "devices": [device]}))
    return path


async def _true(value: bool) -> bool:
    return value
