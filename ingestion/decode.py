"""Telemetry bytes -> rows to store, or dead letters that say why not."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from cityops import wire
from cityops.errors import WireError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PointRef:
    point_id: int
    gateway: str
    is_text: bool


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    payload: bytes
    reason: str
    detail: str


@dataclass
class DecodedBatch:
    """One telemetry message, ready to store under its batch key."""

    gateway: str
    stream: str
    seq: int
    numeric: list[tuple[int, int, float | None, int]] = field(default_factory=list)
    text: list[tuple[int, int, str | None, int]] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.gateway, self.stream, self.seq)

    @property
    def count(self) -> int:
        return len(self.numeric) + len(self.text)


class Decoder:
    """Knows the registered points; `points` maps (device, point) -> PointRef."""

    def __init__(self, points: dict[tuple[str, str], PointRef]) -> None:
        self.points = points
        self.logged_reasons: set[str] = set()

    def decode(self, topic: str, payload: bytes) -> tuple[DecodedBatch | None, list[DeadLetter]]:
        try:
            gateway = wire.gateway_of(topic, "telemetry")
            message: wire.Telemetry = wire.decode(wire.Telemetry, payload)
        except WireError as err:
            reason = str(err.context.get("reason", "bad_topic"))
            return None, [self._dead(topic, payload, reason, err.detail)]
        batch = DecodedBatch(gateway, str(message.stream), message.seq)
        rejected: list[wire.WireReading] = []
        problems: list[str] = []
        for r in message.readings:
            ref = self.points.get((r.device, r.point))
            if ref is None or ref.gateway != gateway:
                rejected.append(r)
                why = "unknown point" if ref is None else f"device not on gateway {gateway}"
                problems.append(f"{r.device}/{r.point}: {why}")
                continue
            quality = wire.QUALITY_CODES[r.quality]
            if ref.is_text:
                text = None if r.value is None else str(r.value)
                batch.text.append((r.ts, ref.point_id, text, quality))
            elif isinstance(r.value, str):
                rejected.append(r)
                problems.append(f"{r.device}/{r.point}: text value for a numeric point")
            else:
                number = None if r.value is None else float(r.value)
                batch.numeric.append((r.ts, ref.point_id, number, quality))
        dead = []
        if rejected:
            raw = wire.Telemetry(stream=message.stream, seq=message.seq, readings=rejected)
            dead.append(self._dead(topic, wire.encode(raw), "unknown_point", "; ".join(problems)))
        return batch, dead

    def _dead(self, topic: str, payload: bytes, reason: str, detail: str) -> DeadLetter:
        if reason not in self.logged_reasons:
            # once per kind: a misbehaving gateway must not flood the log
            self.logged_reasons.add(reason)
            log.warning("dead letter (%s) on %s: %s", reason, topic, detail[:300])
        return DeadLetter(topic, payload, reason, detail)
