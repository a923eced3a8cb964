"""The platform's services on the broker's TLS listener as `cityops stack up` configures them
(issue #19 item 1), against a real Mosquitto: the settings are the ones the stack writes into
local.env (each service with its own certificate of the local CA, the broker verified against
it), only the TLS port is this test's own. Then a gateway revoked through onboarding: its
certificate is in the CRL and the broker refuses it at the TLS handshake; others still connect.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.services.broker_accounts import LocalMosquitto
from api.services.mqtt_link import MqttLink
from cityops import wire
from cityops.mqtt import MqttConnection, client_tls_context
from cityops.settings import Settings
from infra.broker.accounts import add_gateway, ensure_service_account
from infra.broker.process import Broker
from infra.local import stack
from infra.tls.ca import Issued, LocalCA
from ingestion.consumer import IngestWorker
from tests.helpers import free_port


@dataclass
class StackBroker:
    broker: Broker
    ca: LocalCA
    settings: Settings
    tls_port: int


@pytest.fixture(scope="module")
def stack_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackBroker]:
    root = tmp_path_factory.mktemp("stack-tls")
    env = stack._local_env({}, root)  # what `stack up` writes into a new local.env
    tls = dataclasses.replace(stack.ensure_tls(root), port=free_port())
    state = root / "broker"
    for user, prefix in stack.SERVICES.items():
        ensure_service_account(state, user, env[f"{prefix}_PASSWORD"])
    for gateway in ("gw-a", "gw-c"):
        add_gateway(state, gateway)
    broker = Broker(state, free_port(), tls=tls)
    broker.write_config()
    broker.start()
    assert env["CITYOPS_MQTT_URL"] == stack.SERVICES_MQTT_URL
    env["CITYOPS_MQTT_URL"] = f"mqtts://127.0.0.1:{tls.port}"  # this test's port, not 8884
    settings = Settings(_env_file=None, **{k.removeprefix("CITYOPS_").lower(): v
                                           for k, v in env.items()})
    yield StackBroker(broker, LocalCA(root / "tls"), settings, tls.port)
    broker.stop()


def _gateway(sb: StackBroker, gateway: str, **kwargs) -> MqttConnection:
    mine = sb.ca.client(gateway)
    return MqttConnection(sb.settings.mqtt_url, client_id=wire.gateway_client_id(gateway),
                          tls_context=client_tls_context(sb.ca.cert_path, mine.cert, mine.key),
                          **kwargs)


async def test_ingest_receives_and_the_api_link_commands_over_tls(
    stack_broker: StackBroker,
) -> None:
    sb = stack_broker
    assert sb.settings.ingest_mqtt_cert_file != sb.settings.api_mqtt_cert_file
    got: asyncio.Queue = asyncio.Queue()
    worker = IngestWorker(sb.settings, "ingest-tls")
    session = worker._connection()  # the worker's own session, as `cityops ingest` opens it
    session.on_message = lambda topic, payload, mid, qos: got.put_nowait((topic, payload))
    await session.connect()
    await session.subscribe([(wire.telemetry_topic("+"), 1)])

    commands: asyncio.Queue = asyncio.Queue()
    gateway = _gateway(sb, "gw-a", on_message=lambda t, p, m, q: commands.put_nowait((t, p)))
    await gateway.connect()
    await gateway.subscribe([(f"{wire.TOPIC_ROOT}/gw-a/commands/#", 1)])
    await gateway.publish(wire.telemetry_topic("gw-a"), b"over-tls")
    assert await asyncio.wait_for(got.get(), 10) == (wire.telemetry_topic("gw-a"), b"over-tls")

    link = MqttLink(sb.settings, handle=_ignore, on_connect=_nothing)
    running = asyncio.create_task(link.run())
    try:
        topic = wire.command_topic("gw-a", "c-tls-1")
        # svc-api's certificate: the ACL lets it write commands (svc-ingest's would not)
        await link.publish(topic, b'{"device": "ups-01"}', timeout_s=10)
        assert await asyncio.wait_for(commands.get(), 10) == (topic, b'{"device": "ups-01"}')
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        if link.conn is not None:
            await link.conn.close()
        await gateway.close()
        await session.close()


async def _ignore(_topic: str, _payload: bytes) -> None:
    return None


async def _nothing() -> None:
    return None


def _handshake(port: int, ca: LocalCA, cert: Issued) -> str:
    """A TLS handshake and an MQTT CONNECT by hand: "connack", or "refused: <why>" when the
    broker ends the TLS session (with TLS 1.3 the client sees the broker's "certificate
    revoked" alert, or only the closed connection when the close outruns it)."""
    context = ssl.create_default_context(cafile=str(ca.cert_path))
    context.load_cert_chain(str(cert.cert), str(cert.key))
    client_id = b"crl-probe"
    body = b"\x00\x04MQTT\x05\x02\x00\x3c\x00" + len(client_id).to_bytes(2, "big") + client_id
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"\x10" + bytes([len(body)]) + body)
            return "connack" if tls.recv(4)[:1] == b"\x20" else "closed"
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as err:
        return f"refused: {getattr(err, 'reason', None) or err}"


async def test_a_revoked_gateway_certificate_is_refused_at_the_handshake(
    stack_broker: StackBroker, tmp_path: Path,
) -> None:
    sb = stack_broker
    revoked, kept = sb.ca.client("gw-c"), sb.ca.client("gw-a")
    older = Issued(tmp_path / "old.crt", tmp_path / "old.key")  # an earlier certificate of gw-c
    older.cert.write_bytes(revoked.cert.read_bytes())
    older.key.write_bytes(revoked.key.read_bytes())
    revoked = sb.ca.client("gw-c")  # re-issued: both must go into the CRL
    assert _handshake(sb.tls_port, sb.ca, revoked) == "connack", "control: not revoked yet"

    connected = _gateway(sb, "gw-c")
    await connected.connect()

    # the API's and the CLI's revoke path: accounts, CRL, config rewritten, SIGHUP
    await LocalMosquitto(sb.broker.state_dir, wire.TOPIC_ROOT).revoke("gw-c")
    # its open session is dropped too (the dynamic-security plugin, by username)
    await asyncio.wait_for(asyncio.shield(connected.closed), 10)
    await connected.close()
    for cert in (revoked, older):
        assert _handshake(sb.tls_port, sb.ca, cert).startswith("refused: ")
    assert _handshake(sb.tls_port, sb.ca, kept) == "connack", "other gateways unaffected"
    services = sb.settings
    svc = Issued(services.ingest_mqtt_cert_file, services.ingest_mqtt_key_file)
    assert _handshake(sb.tls_port, sb.ca, svc) == "connack", "the services unaffected"
    # a certificate issued after the revoke (the gateway re-admitted) is not in the CRL
    assert _handshake(sb.tls_port, sb.ca, sb.ca.client("gw-c")) == "connack"


def test_stack_up_restarts_a_broker_started_without_the_crl_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stack made before the CRL: its running broker has the TLS listener but no
    `crlfile`, which SIGHUP would not add; `stack up` restarts it, and only that once."""
    monkeypatch.setattr(stack, "BROKER_PORT", free_port())
    monkeypatch.setattr(stack, "BROKER_TLS_PORT", free_port())
    monkeypatch.setattr(stack, "BROKER_USER", None)  # a root broker in a private tmp dir
    env = stack._local_env({}, tmp_path)
    before = dataclasses.replace(stack.ensure_tls(tmp_path), crlfile=None, issuer=None)
    old = Broker(tmp_path / "broker", stack.BROKER_PORT, tls=before)
    old.write_config()
    old.start()
    first = old.pid()
    try:
        stack.ensure_broker(tmp_path, env)
        second = old.pid()
        assert second is not None and second != first, "restarted with the CRL"
        assert "\ncrlfile " in old.conf_path.read_text()
        stack.ensure_broker(tmp_path, env)
        assert old.pid() == second, "a broker with its CRL is only reloaded"
    finally:
        old.stop()
