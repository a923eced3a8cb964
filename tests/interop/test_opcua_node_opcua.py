"""The OPC-UA driver (asyncua) against a node-opcua server (npm, tests/interop/peers): each
security mode (None, Basic256Sha256 Sign and SignAndEncrypt) with a username token and our
own client certificate in node-opcua's trust folder, every type read and written, wrong-type
writes as per-point errors while the device reads on, a method, and a server restart."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import shutil
import socket
from pathlib import Path

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cityops import wire
from cityops.errors import DeviceAuthRefused, DeviceRejected
from edge_agents.commands import CommandExecutor
from edge_agents.config import DeviceConfig
from edge_agents.devices import DeviceRunner
from edge_agents.drivers.opcua import certs
from edge_agents.drivers.opcua.config import OpcUaEndpoint
from edge_agents.drivers.opcua.driver import OpcUaDriver
from edge_agents.profiles import parse_profile
from tests.helpers import await_for, free_port, stop_task
from tests.interop.conftest import Peer

NS = "nsu=urn:cityops:interop;s=Interop"
HELD = {"bool": ("Bool", True), "int16": ("Int16", -1234), "uint16": ("UInt16", 60000),
        "int32": ("Int32", -123456789), "uint32": ("UInt32", 3_000_000_000),
        "int64": ("Int64", -(2**40) - 5), "uint64": ("UInt64", 2**50 + 3),
        "float32": ("Float", 24.8), "float64": ("Double", -0.001),
        "string": ("String", "泵站 WALL-1")}
WRITTEN = {"bool": False, "int16": 32767, "uint16": 1, "int32": -(2**31),
           "uint32": 2**32 - 1, "int64": -(2**62) + 7, "uint64": 2**64 - 2,
           "float32": -0.15625, "float64": 6.02214076e23, "string": "水位 3"}
PROFILE = parse_profile({
    "model": "node-opcua-interop", "category": "environment", "protocol": "opcua",
    "points": [{"name": f"p_{t}", "data_type": t, "writable": True,
                "address": {"node": f"{NS}.{node}"}} for t, (node, _v) in HELD.items()] + [
        {"name": "preset", "data_type": "int32", "address": {"node": f"{NS}.Preset"}},
        {"name": "counter", "data_type": "uint32", "address": {"node": f"{NS}.Counter"}},
        # wrong for the server: an Int32[3] array, a read-only Double
        {"name": "array", "data_type": "int32", "writable": True,
         "address": {"node": f"{NS}.Int32Array"}},
        {"name": "readonly", "data_type": "float64", "writable": True,
         "address": {"node": f"{NS}.ReadOnly"}}],
    "methods": [{"name": "set_preset", "args": [{"name": "preset", "data_type": "int32"}],
                 "call": {"object": NS, "method": f"{NS}.SetPreset"},
                 "writes": [{"point": "preset", "arg": "preset"}]}],
}, "node-opcua-interop")
PASSWORD = "s3cret-节点"


def _server_pair(folder: Path) -> tuple[Path, Path]:
    """The server's own certificate (PEM), made here with `cryptography`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "node-opcua interop")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([
                x509.UniformResourceIdentifier("urn:cityops:interop:node-opcua"),
                x509.DNSName(socket.gethostname()),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, True, True, True, False, False, False, False,
                                         False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "server-cert.pem", folder / "server-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def server(node_peers: Path, tmp_path_factory, peers) -> Peer:
    folder = tmp_path_factory.mktemp("node-opcua")
    # our client certificate, made by the agent's own code, trusted in node-opcua's folder;
    # the second one is not
    certs.create(folder / "agent-cert.der", folder / "agent-key.pem", "urn:cityops:edge-agent")
    certs.create(folder / "stranger-cert.der", folder / "stranger-key.pem",
                 "urn:cityops:edge-agent")
    trusted = folder / "pki" / "trusted" / "certs"
    trusted.mkdir(parents=True)
    shutil.copy(folder / "agent-cert.der", trusted / "cityops-agent.der")
    cert, key = _server_pair(folder)
    port = free_port()
    config = folder / "server.json"
    config.write_text(json.dumps({"port": port, "pki": str(folder / "pki"),
                                  "certificate": str(cert), "privateKey": str(key),
                                  "username": "agent", "password": PASSWORD}))
    peer = Peer(["node", str(node_peers / "opcua_server.mjs"), str(config)], port,
                folder / "node-opcua.log", cwd=node_peers, ready="ready node-opcua")
    peers.append(peer.start())
    return peer


def endpoint(server: Peer, security: str = "SignAndEncrypt", cert: str = "agent", **extra
             ) -> OpcUaEndpoint:
    folder = server.folder
    secure = {} if security == "None" else {
        "security_policy": "Basic256Sha256", "security_mode": security,
        "certificate": str(folder / f"{cert}-cert.der"),
        "private_key": str(folder / f"{cert}-key.pem")}
    return OpcUaEndpoint.model_validate({
        "protocol": "opcua", "url": f"opc.tcp://127.0.0.1:{server.port}/interop",
        "username": "agent", "password_env": "INTEROP_OPCUA_PASSWORD", "mode": "poll",
        "publishing_interval_ms": 100, "sampling_interval_ms": 50, "auth_retry_s": 1,
        **secure, **extra})


@pytest.fixture(autouse=True)
def _password(monkeypatch) -> None:
    monkeypatch.setenv("INTEROP_OPCUA_PASSWORD", PASSWORD)


async def test_each_security_mode_with_a_user_token_reads_every_type(server: Peer) -> None:
    for mode in ("None", "Sign", "SignAndEncrypt"):
        driver = OpcUaDriver("wall", PROFILE, endpoint(server, mode), timeout_s=4)
        await driver.connect()
        values = {r.point: r for r in await driver.read()}
        for t, (_node, held) in HELD.items():
            assert values[f"p_{t}"].value == held, (mode, t)
            assert type(values[f"p_{t}"].value) is type(held), (mode, t)
        assert values["array"].quality is wire.Quality.BAD, "an array is no reading"
        await driver.close()


async def test_refused_password_and_untrusted_certificate(server: Peer, monkeypatch) -> None:
    monkeypatch.setenv("INTEROP_OPCUA_PASSWORD", "wrong")
    with pytest.raises(DeviceAuthRefused, match="refused user 'agent'"):
        await OpcUaDriver("wall", PROFILE, endpoint(server, "Sign"), timeout_s=4).connect()
    monkeypatch.setenv("INTEROP_OPCUA_PASSWORD", PASSWORD)
    # node-opcua answers BadSecurityChecksFailed in a ServiceFault asyncua cannot parse
    with pytest.raises(DeviceAuthRefused, match="does not trust the agent's certificate") as no:
        await OpcUaDriver("wall", PROFILE, endpoint(server, "Sign", cert="stranger"),
                          timeout_s=4).connect()
    assert no.value.context["retry_after_s"] == 1, "retried every auth_retry_s, not hammered"
    rejected = server.folder / "pki" / "rejected"
    assert any(rejected.rglob("*.der")) or any(rejected.rglob("*.pem")), \
        "node-opcua kept the stranger's certificate for its administrator"


async def test_typed_writes_read_back_and_the_method_is_called(server: Peer) -> None:
    driver = OpcUaDriver("wall", PROFILE, endpoint(server), timeout_s=4)
    await driver.connect()
    for t, value in WRITTEN.items():
        readback = await driver.write(f"p_{t}", value)
        assert readback == pytest.approx(value) if t.startswith("float") else readback == value, t
    assert await driver.call(PROFILE.method("set_preset"), {"preset": 7}) == 7
    with pytest.raises(DeviceRejected, match="ok=False, message='no preset -1'"):
        await driver.call(PROFILE.method("set_preset"), {"preset": -1})
    await driver.close()


async def test_wrong_type_writes_are_per_point_errors_the_device_reads_on(server: Peer) -> None:
    device = DeviceConfig.model_validate({
        "id": "wall", "profile": "x", "timeout_s": 4,
        "endpoint": endpoint(server, mode="subscribe").model_dump(mode="json")})
    driver = OpcUaDriver("wall", PROFILE, device.endpoint, timeout_s=4)
    got: list = []
    states: list[str] = []
    runner = DeviceRunner(device, PROFILE, driver, got.extend, lambda _d, s: states.append(s))
    executor = CommandExecutor(None, lambda _d: driver, None)  # type: ignore[arg-type]

    async def command(point: str, value: object) -> tuple[wire.CommandStatus, str]:
        raw = orjson.dumps({"device": "wall", "point": point, "value": value,
                            "expires_at": 32503680000000})
        status, detail, _ = await executor._execute(raw)
        return status, detail

    task = asyncio.create_task(runner.run())
    try:
        await await_for(lambda: _true(_counts(got) >= 3), timeout_s=20, what="counter changes")
        # node-opcua would let a scalar replace the Int32[3]: the agent refuses it
        status, detail = await command("array", 5)
        assert status is wire.CommandStatus.FAILED
        assert "holds an array of Int32 (ValueRank 1)" in detail
        # node-opcua refuses a write to a read-only node
        status, detail = await command("readonly", 1.5)
        assert status is wire.CommandStatus.FAILED and "BadNotWritable" in detail
        assert "write readonly" in detail
        # a text for a number: refused by the profile's check before the device is asked
        assert await command("p_int32", "abc") == (wire.CommandStatus.REJECTED,
                                                   "point p_int32 takes a number")
        # refused by the agent before anything is sent: the node's type cannot take it
        with pytest.raises(DeviceRejected, match="'abc' cannot be written as Int32"):
            await driver.write("p_int32", "abc")
        with pytest.raises(DeviceRejected, match=r"70000 is outside Int16 \(-32768..32767\)"):
            await driver.write("p_int16", 70000)
        seen = _counts(got)
        await await_for(lambda: _true(_counts(got) > seen + 2), what="changes after them")
        assert await command("p_int16", -5) == (wire.CommandStatus.SUCCEEDED,
                                                "written and read back")
        assert runner.state == "online" and states == ["online"]
    finally:
        await stop_task(task)


async def test_the_subscription_comes_back_after_a_node_opcua_restart(server: Peer) -> None:
    device = DeviceConfig.model_validate({
        "id": "wall", "profile": "x", "timeout_s": 2,
        "endpoint": endpoint(server, mode="subscribe", watchdog_interval_s=0.5)
        .model_dump(mode="json")})
    driver = OpcUaDriver("wall", PROFILE, device.endpoint, timeout_s=2)
    got: list = []
    states: list[str] = []
    runner = DeviceRunner(device, PROFILE, driver, got.extend, lambda _d, s: states.append(s))
    task = asyncio.create_task(runner.run())
    try:
        await await_for(lambda: _true(_counts(got) >= 3), timeout_s=20, what="counter changes")
        server.stop()
        await await_for(lambda: _true(runner.state == "offline"), timeout_s=15, what="offline")
        seen = _counts(got)
        server.start()
        await await_for(lambda: _true(_counts(got) >= seen + 3), timeout_s=40,
                        what="the subscription to resume after the restart")
        assert states == ["online", "offline", "online"]
    finally:
        await stop_task(task)


def _counts(readings: list) -> int:
    return sum(1 for r in readings if r.point == "counter" and r.value is not None)


async def _true(value: bool) -> bool:
    return value
