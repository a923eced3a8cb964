"""Mosquitto's TLS listener with per-gateway client certificates from the local CA, against a
real broker: a gateway's own certificate lets it publish its telemetry; another gateway's
certificate only lets the holder act as that other gateway; no certificate, or a broker
certificate the client does not trust, and there is no connection at all."""

from __future__ import annotations

import asyncio
import queue
import secrets
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from cityops import wire
from cityops.errors import BrokerUnavailable, ConfigError
from cityops.mqtt import MqttConnection, client_tls_context
from cityops.settings import Settings
from cityops.tls import service_tls_context
from infra.broker.accounts import add_gateway, ensure_service_account
from infra.broker.process import Broker, BrokerTls
from infra.tls.ca import Issued, LocalCA
from ingestion.mqtt_session import LeanMqttSession
from tests.helpers import free_port


@dataclass
class TlsBroker:
    broker: Broker
    ca: LocalCA
    ingest_password: str

    @property
    def tls_port(self) -> int:
        assert self.broker.tls is not None
        return self.broker.tls.port


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    root = tmp_path_factory.mktemp("tls-broker")
    ca = LocalCA(root / "tls").ensure()
    server = ca.server(["127.0.0.1", "localhost"])
    state = root / "broker"
    state.mkdir()
    password = secrets.token_urlsafe(16)
    ensure_service_account(state, "svc-ingest", password)
    for gateway in ("gw-a", "gw-b"):
        add_gateway(state, gateway)
    broker = Broker(state, free_port(), tls=BrokerTls(free_port(), ca.cert_path, server.cert,
                                                      server.key, client_certs=True))
    broker.write_config()
    broker.start()
    yield TlsBroker(broker, ca, password)
    broker.stop()


def _tls_client(tls_broker: TlsBroker, client_id: str, cafile: Path,
                cert: Issued | None) -> paho.Client:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=paho.MQTTv5)
    # verifies the broker's certificate and that it names 127.0.0.1 (as agents do)
    client.tls_set(ca_certs=str(cafile), certfile=str(cert.cert) if cert else None,
                   keyfile=str(cert.key) if cert else None, cert_reqs=ssl.CERT_REQUIRED)
    return client


def _listen(tls_broker: TlsBroker) -> tuple[paho.Client, queue.Queue]:
    got: queue.Queue = queue.Queue()
    sub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"s-{secrets.token_hex(3)}",
                      protocol=paho.MQTTv5)
    sub.username_pw_set("svc-ingest", tls_broker.ingest_password)
    sub.on_message = lambda _c, _u, msg: got.put((msg.topic, msg.payload))
    sub.connect("127.0.0.1", tls_broker.broker.port)
    sub.loop_start()
    sub.subscribe(wire.telemetry_topic("+"), qos=1)
    return sub, got


def test_a_gateway_publishes_with_its_own_certificate_and_not_as_another(
    tls_broker: TlsBroker,
) -> None:
    sub, got = _listen(tls_broker)
    ca = tls_broker.ca
    own = _tls_client(tls_broker, wire.gateway_client_id("gw-a"), ca.cert_path, ca.client("gw-a"))
    own.connect("127.0.0.1", tls_broker.tls_port)
    own.loop_start()
    # the subscription is in place once a first message of our own comes through
    own.publish(wire.telemetry_topic("gw-a"), b"hello", qos=1).wait_for_publish(10)
    assert got.get(timeout=10) == (wire.telemetry_topic("gw-a"), b"hello")

    # gw-b's certificate makes the holder gw-b: gw-a's topic is refused (reason 0x87)
    thief = _tls_client(tls_broker, wire.gateway_client_id("gw-b"), ca.cert_path,
                        ca.client("gw-b"))
    thief.connect("127.0.0.1", tls_broker.tls_port)
    thief.loop_start()
    refused = thief.publish(wire.telemetry_topic("gw-a"), b"forged", qos=1)
    refused.wait_for_publish(10)
    own.publish(wire.telemetry_topic("gw-a"), b"after", qos=1).wait_for_publish(10)
    assert got.get(timeout=10) == (wire.telemetry_topic("gw-a"), b"after"), "forged dropped"
    for client in (own, thief, sub):
        client.loop_stop()
        client.disconnect()


def _connack(port: int, cafile: Path, cert: Issued | None) -> bytes:
    """A TLS handshake and an MQTT v5 CONNECT by hand: the first bytes the broker answers,
    b"" when it closes the connection instead."""
    context = ssl.create_default_context(cafile=str(cafile))
    if cert:
        context.load_cert_chain(str(cert.cert), str(cert.key))
    client_id = wire.gateway_client_id("gw-a").encode()
    body = (b"\x00\x04MQTT\x05\x02\x00\x3c\x00" + len(client_id).to_bytes(2, "big")
            + client_id)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        try:  # a refused client certificate ends the connection at the first read or write
            tls.sendall(b"\x10" + bytes([len(body)]) + body)
            return tls.recv(4)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return b""


def test_without_a_certificate_or_trust_in_the_broker_there_is_no_connection(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    ca, port = tls_broker.ca, tls_broker.tls_port
    assert _connack(port, ca.cert_path, ca.client("gw-a"))[:1] == b"\x20", "control: CONNACK"
    assert _connack(port, ca.cert_path, None) == b"", "no client certificate"
    stranger = LocalCA(tmp_path / "other").ensure()
    assert _connack(port, ca.cert_path, stranger.client("gw-a")) == b"", "another CA's cert"
    with pytest.raises(ssl.SSLCertVerificationError):  # an agent trusting another CA only
        _connack(port, stranger.cert_path, ca.client("gw-a"))


def test_keys_are_private_and_certificates_name_their_holder(tmp_path: Path) -> None:
    ca = LocalCA(tmp_path / "tls").ensure()
    issued = ca.client("gw-x")
    for key in (ca.key_path, issued.key):
        assert key.stat().st_mode & 0o077 == 0
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(issued.cert.read_bytes())
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "gw-x"
    assert LocalCA(tmp_path / "tls").ensure().cert_path.read_bytes() == ca.cert_path.read_bytes()


async def test_the_platform_client_verifies_the_broker_and_presents_the_gateway_certificate(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    """What an agent does with `broker: {url: mqtts://..., ca_file, cert_file, key_file}`."""
    ca, url = tls_broker.ca, f"mqtts://127.0.0.1:{tls_broker.tls_port}"
    mine = ca.client("gw-a")
    conn = MqttConnection(url, client_id=wire.gateway_client_id("gw-a"),
                          tls_context=client_tls_context(ca.cert_path, mine.cert, mine.key))
    await conn.connect()
    assert await conn.publish(wire.telemetry_topic("gw-a"), b"x") in (None, 0, 16)
    await conn.close()
    stranger = LocalCA(tmp_path / "other").ensure()
    wary = MqttConnection(url, client_id=wire.gateway_client_id("gw-a"),
                          tls_context=client_tls_context(stranger.cert_path, mine.cert, mine.key))
    with pytest.raises(BrokerUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        await wary.connect(timeout_s=5)
    with pytest.raises(ConfigError, match="both"):
        client_tls_context(ca.cert_path, mine.cert, None)


def test_stack_tls_survives_rewrites_and_add_gateway_issues_a_certificate(tmp_path: Path) -> None:
    """`stack up` configures the TLS listener once; the API's onboarding and `stack
    add-gateway` rewrite the config from a Broker made without it, which must keep it."""
    from infra.local import stack

    tls = stack.ensure_tls(tmp_path)
    Broker(tmp_path / "broker", free_port(), tls=tls).write_config()
    printed = stack.add_gateway(tmp_path, "gw-c", certificate=True)  # rewrites the config
    conf = (tmp_path / "broker" / "mosquitto.conf").read_text()
    assert f"listener {stack.BROKER_TLS_PORT} 127.0.0.1" in conf
    assert "use_identity_as_username true" in conf
    cert_path = Path(printed.split("cert_file: ")[1].split("\n")[0])
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "gw-c"


async def test_the_ingest_session_receives_over_tls_with_its_service_certificate(
    tls_broker: TlsBroker, settings: Settings
) -> None:
    """The ingest worker's own MQTT session, configured as `cityops ingest` configures it
    (mqtts:// url, CITYOPS_MQTT_CA_FILE / CERT_FILE / KEY_FILE), takes a gateway's telemetry."""
    ca = tls_broker.ca
    svc = ca.client("svc-ingest")
    tls = settings.model_copy(update={
        "mqtt_url": f"mqtts://127.0.0.1:{tls_broker.tls_port}", "mqtt_ca_file": ca.cert_path,
        "mqtt_cert_file": svc.cert, "mqtt_key_file": svc.key})
    got: asyncio.Queue = asyncio.Queue()
    session = LeanMqttSession(tls.mqtt_url, client_id="ingest-tls-test",
                              tls_context=service_tls_context(tls, "ingest"),
                              on_message=lambda topic, payload, mid, qos: got.put_nowait(payload))
    await session.connect()
    await session.subscribe([(wire.telemetry_topic("+"), 1)])
    mine = ca.client("gw-a")
    gateway = MqttConnection(tls.mqtt_url, client_id=wire.gateway_client_id("gw-a"),
                             tls_context=client_tls_context(ca.cert_path, mine.cert, mine.key))
    await gateway.connect()
    await gateway.publish(wire.telemetry_topic("gw-a"), b"over-tls")
    assert await asyncio.wait_for(got.get(), 10) == b"over-tls"
    await gateway.close()
    await session.close()
    assert service_tls_context(settings, "ingest") is None, "plain mqtt:// has no TLS"
