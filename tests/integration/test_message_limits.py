"""Message sizes on the MQTT side (issue #22, item 3): the broker refuses a publish over its
max_packet_size instead of holding and relaying it, and ingestion dead-letters an oversize
payload unparsed, keeping only its head."""

from __future__ import annotations

import queue
import secrets

import orjson
import paho.mqtt.client as paho

from cityops import wire
from infra.broker.process import MAX_PACKET_BYTES
from ingestion.decode import DEAD_LETTER_KEEP_BYTES, MAX_MESSAGE_BYTES, Decoder
from tests.conftest import BrokerFixture
from tests.helpers import wait_for


def _connect(broker: BrokerFixture, username: str, password: str,
             inbox: queue.Queue | None) -> paho.Client | None:
    # a gateway's account may connect with its own client id only
    client_id = (f"t-size-{secrets.token_hex(4)}" if username.startswith("svc-")
                 else wire.gateway_client_id(username))
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5,
                         client_id=client_id)
    client.username_pw_set(username, password)
    connected: queue.Queue = queue.Queue()
    client.on_connect = lambda _c, _u, _f, rc, _p: connected.put(rc)
    if inbox is not None:
        client.on_message = lambda _c, _u, msg: inbox.put(msg)
    client.connect("127.0.0.1", broker.broker.port)
    client.loop_start()
    if connected.get(timeout=10).is_failure:
        client.loop_stop()
        return None
    return client


def _client(broker: BrokerFixture, username: str, password: str,
            inbox: queue.Queue | None = None) -> paho.Client:
    # a new account is refused until the broker has reloaded its password file (SIGHUP)
    return wait_for(lambda: _connect(broker, username, password, inbox), timeout_s=15,
                    what=f"{username} connected")


def test_the_broker_refuses_a_message_over_its_packet_limit(broker: BrokerFixture) -> None:
    gateway = f"gw-size-{secrets.token_hex(3)}"
    password = broker.add_gateway(gateway)
    topic = f"cityops/v1/{gateway}/telemetry"
    inbox: queue.Queue = queue.Queue()
    ingest = _client(broker, "svc-ingest", broker.passwords["svc-ingest"], inbox)
    ingest.subscribe(topic, qos=1)
    sender = _client(broker, gateway, password)
    try:
        # the subscription is in place once a first small message arrives through it
        wait_for(lambda: sender.publish(topic, b"ready", qos=1) and _got(inbox, b"ready"),
                 what="the subscription")
        # refused either way: paho honours the maximum the broker announced, or the broker
        # drops the connection; before, 300 MiB was accepted and relayed
        big = sender.publish(topic, b"x" * (MAX_PACKET_BYTES + 1024), qos=1)
        if big.rc == paho.MQTT_ERR_SUCCESS:  # not refused by paho: the broker must refuse it
            wait_for(lambda: big.is_published() or not sender.is_connected(), timeout_s=30,
                     what="the broker's answer to the big message")
        assert not big.is_published()
        marker = _client(broker, gateway, password)
        marker.publish(topic, b"marker", qos=1).wait_for_publish(10)
        message = inbox.get(timeout=10)
        while message.payload == b"ready":  # a late duplicate of the readiness probe
            message = inbox.get(timeout=10)
        assert message.payload == b"marker", f"got {len(message.payload)} bytes first"
        marker.disconnect()
    finally:
        sender.disconnect()
        ingest.disconnect()


def _got(inbox: queue.Queue, payload: bytes) -> bool:
    try:
        return inbox.get(timeout=0.5).payload == payload
    except queue.Empty:
        return False


def test_ingestion_dead_letters_an_oversize_payload_unparsed() -> None:
    reading = {"device": "d", "point": "p", "ts": 1763892000123, "value": "y" * 1000}
    payload = orjson.dumps({"stream": "0b9d7a52-3f0e-4a59-9d57-0c1f3e0f4a11", "seq": 1,
                            "readings": [reading] * (MAX_MESSAGE_BYTES // 1000)})
    assert len(payload) > MAX_MESSAGE_BYTES
    batch, dead = Decoder({}, clock=lambda: 1763892000.0).decode(
        "cityops/v1/gw1/telemetry", payload)
    assert batch is None and [d.reason for d in dead] == ["too_large"]
    assert len(dead[0].payload) == DEAD_LETTER_KEEP_BYTES
    assert f"{len(payload)} bytes is over the limit" in dead[0].detail
