"""Agent config: every example loads, endpoints by protocol, the retained config, command
parsing, and the uplink's order of batches after an outage."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from cityops import wire
from cityops.errors import ConfigError, WireError
from edge_agents.commands import parse_command, same_value
from edge_agents.config import load_agent_config
from edge_agents.queue import LocalQueue
from edge_agents.remote_config import parse_remote_config
from edge_agents.uplink import _Cursors

AGENT_DIR = Path(__file__).parents[2] / "edge_agents"
EXAMPLES = sorted([*AGENT_DIR.glob("examples/*.yaml"), *AGENT_DIR.glob("drivers/*/example.yaml")])


def test_there_are_examples_for_every_driver() -> None:
    assert {p.parent.name for p in EXAMPLES} >= {"examples", "modbus", "opcua", "mqtt"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_example_config_loads(path: Path) -> None:
    loaded = load_agent_config(path)
    assert loaded.config.devices
    for device in loaded.config.devices:
        assert device.endpoint.protocol == loaded.profiles[device.id].protocol


def _write(tmp_path: Path, devices: list[dict]) -> Path:
    path = tmp_path / "gw.yaml"
    path.write_text(orjson.dumps({"gateway": "gw-t", "queue": {"path": "q.db"},
                                  "devices": devices}).decode())
    return path


def test_endpoint_without_protocol_is_modbus_and_a_mismatch_is_refused(tmp_path: Path) -> None:
    loaded = load_agent_config(_write(tmp_path, [
        {"id": "m", "profile": "power/ups", "endpoint": {"host": "10.0.0.5"}}]))
    assert loaded.config.devices[0].endpoint.protocol == "modbus"
    with pytest.raises(ConfigError, match=r"devices\.0\.endpoint: profile video-wall-controller "
                                          r"speaks opcua"):
        load_agent_config(_write(tmp_path, [
            {"id": "w", "profile": "av/video_wall", "endpoint": {"host": "10.0.0.5"}}]))


def test_a_secure_opcua_endpoint_needs_the_agents_certificate(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="certificate"):
        load_agent_config(_write(tmp_path, [{"id": "w", "profile": "av/video_wall", "endpoint": {
            "protocol": "opcua", "url": "opc.tcp://h:4840", "security_policy": "Basic256Sha256",
            "security_mode": "Sign"}}]))


def test_no_devices_is_valid_they_come_from_the_config_topic(tmp_path: Path) -> None:
    assert load_agent_config(_write(tmp_path, [])).config.devices == []


def _remote(**over) -> bytes:
    body = {"gateway": "gw-t", "version": 3, "profiles": {},
            "devices": [{"id": "u", "profile": "power/ups", "endpoint": {"host": "h"}}]}
    return orjson.dumps(body | over)


def test_remote_config_takes_shipped_or_sent_profiles_and_names_errors() -> None:
    remote = parse_remote_config(_remote(), "gw-t")
    assert remote.version == 3 and remote.profiles["u"].model == "ups-online"
    sent = {"model": "tiny", "category": "power", "protocol": "modbus", "points": [
        {"name": "v", "data_type": "uint16", "address": {"table": "input_register", "offset": 0}}]}
    remote = parse_remote_config(_remote(profiles={"tiny": sent}, devices=[
        {"id": "t", "profile": "tiny", "endpoint": {"host": "h"}}]), "gw-t")
    assert remote.profiles["t"].model == "tiny"
    with pytest.raises(ConfigError, match="not gw-x"):
        parse_remote_config(_remote(), "gw-x")
    with pytest.raises(ConfigError, match=r"config\.devices\.0: poll_interval_s"):
        parse_remote_config(_remote(devices=[{"id": "u", "profile": "power/ups",
                                              "poll_interval_s": -1, "endpoint": {"host": "h"}}]),
                            "gw-t")


def test_commands_parse_by_shape() -> None:
    write = parse_command(b'{"device":"d","point":"p","value":3,"expires_at":1}')
    assert isinstance(write, wire.WriteCommand)
    call = parse_command(b'{"device":"d","method":"m","args":{"a":1},"expires_at":1}')
    assert isinstance(call, wire.MethodCommand)
    with pytest.raises(WireError):
        parse_command(b'{"device":"d","point":"p","expires_at":1}')
    assert same_value(21.5, 21.55, 0.05) and not same_value(21.5, 21.7, 0.05)
    assert same_value(True, True, 0) and not same_value(1, True, 0)


async def test_after_an_outage_live_batches_go_out_alongside_the_backlog(tmp_path: Path) -> None:
    queue = LocalQueue(tmp_path / "q.db", 1 << 24)
    await queue.open()
    for _ in range(100):
        await queue.append(b"[]", 1)
    cursors = _Cursors(queue)  # a session starts with 100 batches of backlog
    for _ in range(10):
        await queue.append(b"[]", 1)  # live data keeps coming
    first = [b.seq for b in await cursors.next(8)]
    assert first == [101, 102, 103, 104, 1, 2, 3, 4], "newest half, oldest half"
    await queue.append(b"[]", 1)
    second = [b.seq for b in await cursors.next(8)]
    assert second[:4] == [105, 106, 107, 108] and second[4:] == [5, 6, 7, 8]
    rest = await cursors.next(1000)
    assert [b.seq for b in rest][:3] == [109, 110, 111] and len(rest) == 3 + 92
    await queue.close()
