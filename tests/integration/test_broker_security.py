"""Issue #22 items 1 and 9 against the project's own Mosquitto config (password file, ACL and
the dynamic-security plugin) and a real ingest worker: a gateway cannot join the ingestion's
shared subscription (nor subscribe outside its own topics), nothing is lost while it tries,
and no gateway can connect under another client's id."""

from __future__ import annotations

import queue
import threading
import uuid

import paho.mqtt.client as paho
import pytest

from cityops import wire
from tests.conftest import BrokerFixture, Processes
from tests.helpers import wait_for
from tests.integration.ingest_helpers import Gateway, now_ms, register, scalar

ROGUE_FILTERS = [
    "$share/ingest/cityops/v1/+/telemetry",
    "$share/ingest/#",
    "$share/rogue/cityops/v1/+/telemetry",
    "cityops/v1/+/telemetry",
    "cityops/v1/+/commands/#",
    "#",
]


class Client:
    """A paho session whose CONNACK, SUBACKs and disconnection can be awaited."""

    def __init__(self, broker: BrokerFixture, username: str, password: str,
                 client_id: str) -> None:
        self.connacks: queue.Queue = queue.Queue()
        self.subacks: queue.Queue = queue.Queue()
        self.disconnected = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=paho.MQTTv5, reconnect_on_failure=False)
        self.client.username_pw_set(username, password)
        self.client.on_connect = lambda _c, _u, _f, rc, _p: self.connacks.put(rc)
        self.client.on_subscribe = lambda _c, _u, _m, codes, _p: self.subacks.put(codes)
        self.client.on_disconnect = lambda *_a: self.disconnected.set()
        self.client.connect("127.0.0.1", broker.broker.port)
        self.client.loop_start()

    def connack(self):
        return self.connacks.get(timeout=10)

    def subscribe(self, topic: str):
        self.client.subscribe(topic, qos=1)
        return self.subacks.get(timeout=10)[0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def victim(processes: Processes, broker: BrokerFixture, database_url: str):
    gw = f"gw-{uuid.uuid4().hex[:6]}"
    password = broker.add_gateway(gw)
    ids = register(database_url, gw, {f"{gw}-d": ["a"]})
    processes.start("ingest", "ingest")
    wait_for(lambda: "subscribed" in processes.log("ingest"), what="worker subscribed")
    sender = Gateway(broker, gw, password)
    yield sender, ids[(f"{gw}-d", "a")]
    sender.close()


def test_gateway_cannot_take_a_share_of_telemetry_and_nothing_is_lost(
    victim, broker: BrokerFixture, database_url: str
) -> None:
    sender, point_id = victim
    rogue_id = f"gw-{uuid.uuid4().hex[:6]}"
    rogue = Client(broker, rogue_id, broker.add_gateway(rogue_id),
                   wire.gateway_client_id(rogue_id))
    assert not rogue.connack().is_failure
    codes: list[str] = []
    stop = threading.Event()

    def attempt() -> None:  # keeps trying while the victim's readings flow
        while not stop.is_set():
            for topic in ROGUE_FILTERS:
                codes.append(f"{topic}: {rogue.subscribe(topic).getName()}")

    trying = threading.Thread(target=attempt)
    trying.start()
    t0 = now_ms() - 60_000
    try:
        for seq in range(200):
            sender.send([(f"{sender.gateway}-d", "a", t0 + seq, float(seq))])
    finally:
        stop.set()
        trying.join(15)
    assert len(codes) >= len(ROGUE_FILTERS)
    assert all(c.endswith("Not authorized") for c in codes), codes
    wait_for(lambda: scalar(database_url, "SELECT count(*) FROM readings WHERE point_id = %s",
                            (point_id,)) == 200, what="every reading committed")
    # its own topics stay open to it
    assert not rogue.subscribe(wire.config_topic(rogue_id)).is_failure
    assert not rogue.subscribe(f"{wire.TOPIC_ROOT}/{rogue_id}/commands/#").is_failure
    rogue.close()


def test_gateway_cannot_connect_under_another_clients_id(
    victim, broker: BrokerFixture
) -> None:
    sender, _ = victim
    other = f"gw-{uuid.uuid4().hex[:6]}"
    password = broker.add_gateway(other)
    disconnected = threading.Event()
    sender.client.on_disconnect = lambda *_a: disconnected.set()
    for stolen in (wire.gateway_client_id(sender.gateway), "ingest-host-1", "api-0123"):
        thief = Client(broker, other, password, stolen)
        assert thief.connack().getName() == "Not authorized", stolen
        thief.close()
    assert not disconnected.is_set(), "the real gateway was knocked off"
    sender.send([(f"{sender.gateway}-d", "a", now_ms(), 1.0)])  # PUBACK: still connected
    own = Client(broker, other, password, wire.gateway_client_id(other))
    assert not own.connack().is_failure
    own.close()
