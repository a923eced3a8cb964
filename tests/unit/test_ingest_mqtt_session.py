"""The lean MQTT session's framing: packets split anywhere across reads, several per read."""

from __future__ import annotations

import random

import pytest

from ingestion.mqtt_session import (
    _U16,
    PUBLISH,
    LeanMqttSession,
    packet,
    read_varint,
    string,
    varint,
)


@pytest.mark.parametrize("n", [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 268_435_455])
def test_remaining_length_round_trips(n: int) -> None:
    data = varint(n)
    assert read_varint(data, 0) == (n, len(data))
    assert read_varint(data[:-1], 0) is None or len(data) == 1


def publish(topic: str, mid: int, payload: bytes, qos: int = 1, props: bytes = b"") -> bytes:
    head = string(topic) + (_U16.pack(mid) if qos else b"")
    return packet(PUBLISH, qos << 1, head + varint(len(props)) + props + payload)


def test_messages_survive_any_split_of_the_stream() -> None:
    got: list[tuple[str, bytes, int, int]] = []
    session = LeanMqttSession("mqtt://127.0.0.1:1", client_id="t",
                              on_message=lambda *m: got.append(m))
    want = [(f"cityops/v1/gw{i}/telemetry", bytes([i % 256]) * (i * 37 % 300), i + 1, 1)
            for i in range(200)]
    want.append(("cityops/v1/gw/telemetry", b"qos0", 0, 0))
    stream = b"".join(publish(t, m, p, q, props=b"\x01\x01" if m % 3 else b"")
                      for t, p, m, q in want)
    rng = random.Random(5)
    pos = 0
    while pos < len(stream):
        step = rng.choice([1, 2, 3, 50, 700, 5000])
        session.data_received(stream[pos:pos + step])
        pos += step
    assert got == want
    assert not session._buf
