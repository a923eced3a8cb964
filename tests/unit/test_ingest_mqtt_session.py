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


class FakeTransport:
    def __init__(self) -> None:
        self.paused, self.written = False, b""

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        self.written += data


async def test_the_receive_window_is_enforced_by_pausing_the_socket() -> None:
    got: list[int] = []
    session = LeanMqttSession("mqtt://127.0.0.1:1", client_id="t", receive_maximum=100,
                              on_message=lambda _t, _p, mid, _q: got.append(mid))
    transport = FakeTransport()
    session.connection_made(transport)  # type: ignore[arg-type]
    session.data_received(b"".join(publish("t/x", m, b"p") for m in range(1, 100)))
    assert not transport.paused
    session.data_received(publish("t/x", 100, b"p"))
    assert transport.paused, "100 unacknowledged: stop reading"
    for mid in got[:25]:
        session.ack(mid, 1)
    assert transport.paused, "still 75 held: not yet"
    session.ack(got[25], 1)
    assert not transport.paused, "under three quarters: read again"
    session._flush_acks()
    assert transport.written == b"".join(b"\x40\x02" + _U16.pack(m) for m in got[:26])
