"""A throwaway Mosquitto with the project's ACL, and the local stack's PostgreSQL cluster."""

from __future__ import annotations

import queue
import socket
import time
import uuid
from collections.abc import Callable, Iterator

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from psycopg.conninfo import make_conninfo

from cityops import wire
from cityops.settings import env_file_path, load_settings
from infra.broker import accounts
from infra.broker.process import Broker
from infra.db.admin import drop_database

DEADLINE_S = 10.0
INGEST_PASSWORD = "ingest-test-password"
API_PASSWORD = "api-test-password"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Probe:
    """A paho client whose broker answers (CONNACK, SUBACK, PUBACK, messages) can be awaited."""

    def __init__(self, port: int, username: str, password: str) -> None:
        # a gateway may use only its own client id; services any
        client_id = (f"probe-{uuid.uuid4().hex[:8]}" if username.startswith("svc-")
                     else wire.gateway_client_id(username))
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(username, password)
        self.connacks: queue.Queue[ReasonCode] = queue.Queue()
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.pubacks: dict[int, ReasonCode] = {}
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.disconnected = False
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = lambda _c, _u, _mid, codes, _p: self.subacks.put(codes)
        self.client.on_publish = lambda _c, _u, mid, code, _p: self.pubacks.__setitem__(mid, code)
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, client, _userdata, _flags, code, _props) -> None:
        self.connacks.put(code)
        if code.is_failure:
            # paho would otherwise retry a refused login forever
            client.disconnect()

    def _on_disconnect(self, *_args) -> None:
        self.disconnected = True

    def connack(self) -> ReasonCode:
        return self.connacks.get(timeout=DEADLINE_S)

    def subscribe(self, topic: str) -> ReasonCode:
        self.client.subscribe(topic, qos=1)
        return self.subacks.get(timeout=DEADLINE_S)[0]

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        info = self.client.publish(topic, payload, qos=1)
        _wait_for(lambda: info.mid in self.pubacks, f"PUBACK for {topic}")
        return self.pubacks[info.mid]

    def next_payload(self) -> bytes:
        return self.messages.get(timeout=DEADLINE_S).payload

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(tmp_path) -> Iterator[Broker]:
    accounts.ensure_service_account(tmp_path, "svc-ingest", INGEST_PASSWORD)
    accounts.ensure_service_account(tmp_path, "svc-api", API_PASSWORD)
    instance = Broker(tmp_path, _free_port())
    instance.write_config()
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def connect(broker) -> Iterator[Callable[[str, str], Probe]]:
    probes: list[Probe] = []

    def _connect(username: str, password: str) -> Probe:
        probe = Probe(broker.port, username, password)
        probes.append(probe)
        return probe

    yield _connect
    for probe in probes:
        probe.close()


def _gateway(broker: Broker, gateway_id: str) -> str:
    password = accounts.add_gateway(broker.state_dir, gateway_id)
    broker.write_config()
    broker.reload()
    return password


def _ingest(connect) -> Probe:
    ingest = connect("svc-ingest", INGEST_PASSWORD)
    assert not ingest.connack().is_failure
    assert not ingest.subscribe("$share/ingest/cityops/v1/+/telemetry").is_failure
    return ingest


def _connected_gateway(broker, connect, gateway_id: str) -> tuple[Probe, str]:
    password = _gateway(broker, gateway_id)
    # the reload is asynchronous: retry until the broker knows the new account
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        probe = connect(gateway_id, password)
        if not probe.connack().is_failure:
            return probe, password
    raise AssertionError(f"gateway {gateway_id} could not connect")


def test_gateway_telemetry_reaches_shared_ingest_subscription(broker, connect) -> None:
    ingest = _ingest(connect)
    gw1, _ = _connected_gateway(broker, connect, "gw1")
    assert not gw1.publish("cityops/v1/gw1/telemetry", b"own").is_failure
    assert ingest.next_payload() == b"own"


def test_publish_under_another_gateway_is_refused_and_not_delivered(broker, connect) -> None:
    ingest = _ingest(connect)
    gw1, _ = _connected_gateway(broker, connect, "gw1")
    assert gw1.publish("cityops/v1/gw2/telemetry", b"forged").getName() == "Not authorized"
    # the broker keeps one publisher's messages in order: a later message arriving first
    # proves the forged one was dropped
    gw1.publish("cityops/v1/gw1/telemetry", b"marker")
    assert ingest.next_payload() == b"marker"


def test_gateway_never_receives_another_gateways_commands(broker, connect) -> None:
    api = connect("svc-api", API_PASSWORD)
    assert not api.connack().is_failure
    gw1, _ = _connected_gateway(broker, connect, "gw1")
    # refused in the SUBACK (the dynamic-security plugin), and filtered at delivery anyway
    assert gw1.subscribe("cityops/v1/gw2/commands/#").getName() == "Not authorized"
    assert not gw1.subscribe("cityops/v1/gw1/commands/#").is_failure
    assert not api.publish("cityops/v1/gw2/commands/c1", b"for-gw2").is_failure
    assert not api.publish("cityops/v1/gw1/commands/c2", b"for-gw1").is_failure
    assert gw1.next_payload() == b"for-gw1"


def test_wrong_password_is_refused(broker, connect) -> None:
    _gateway(broker, "gw1")
    assert connect("gw1", "not-the-password").connack().is_failure
    assert connect("svc-ingest", "").connack().is_failure


def test_revoked_gateway_is_cut_off_after_reload(broker, connect) -> None:
    gw2, password = _connected_gateway(broker, connect, "gw2")
    accounts.revoke_gateway(broker.state_dir, "gw2")
    broker.write_config()
    broker.reload()
    # Mosquitto 2.0 re-checks connected clients on reload and drops the revoked one
    _wait_for(lambda: gw2.disconnected, "the revoked gateway's connection to be closed")
    assert connect("gw2", password).connack().is_failure


def test_stop_leaves_nothing_listening(broker) -> None:
    broker.stop()
    assert not broker.is_running()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", broker.port)) != 0


def test_local_cluster_new_database_has_timescaledb() -> None:
    """Needs `cityops stack up` (it reads the generated $CITYOPS_STATE_DIR/local.env)."""
    assert env_file_path().exists(), "run `cityops stack up` first"
    settings = load_settings()
    admin_url = settings.database_admin_url.get_secret_value()
    name = f"cityops_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(make_conninfo(admin_url, dbname=name)) as conn:
            row = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
            ).fetchone()
            assert row is not None and row[0]
    finally:
        drop_database(admin_url, name)
