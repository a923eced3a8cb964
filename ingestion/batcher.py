"""Received messages waiting to be stored, cut into batches of bounded size.

A batch (one transaction) holds about `max_readings` readings and at most a third of the
receive window in messages, so that the broker can send the next batches while one is being
stored, and so that a worker far behind still writes transactions of the same size.
"""

from __future__ import annotations

import asyncio

Message = tuple[str, bytes, int, int]
"""(topic, payload, mid, qos) as received"""


def estimate(payload: bytes) -> int:
    # a cheap size guess keeps decoding off the receive path (~90 bytes per reading)
    return max(1, len(payload) // 90)


class Batcher:
    def __init__(self, max_readings: int, receive_window: int) -> None:
        self.max_readings = max_readings
        self.max_messages = max(1, receive_window // 3)
        self.messages: list[Message] = []
        self.readings = 0  # estimated, of what waits
        self.full = asyncio.Event()

    def add(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        self.messages.append((topic, payload, mid, qos))
        self.readings += estimate(payload)
        if self.is_full:
            self.full.set()

    @property
    def is_full(self) -> bool:
        return self.readings >= self.max_readings or len(self.messages) >= self.max_messages

    def take(self) -> list[Message]:
        """At most one batch off the front of what waits."""
        messages, most = self.messages, min(len(self.messages), self.max_messages)
        total = cut = 0
        while cut < most and total < self.max_readings:
            total += estimate(messages[cut][1])
            cut += 1
        taken, self.messages = messages[:cut], messages[cut:]
        self.readings -= total
        return taken

    def clear(self) -> None:
        """Drop our copies (the broker redelivers what was not acknowledged)."""
        self.messages, self.readings = [], 0
