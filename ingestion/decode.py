"""Telemetry bytes -> rows to store, or dead letters that say why not."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import orjson

from cityops import wire
from cityops.errors import WireError

log = logging.getLogger(__name__)

_TOP_KEYS = {"stream", "seq", "readings"}
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_QUALITY = {q.value: code for q, code in wire.QUALITY_CODES.items()}
_MAX_TS = 32503680000000
_MAX_READINGS = 10000
_NUMBER = (int, float, bool)


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
    # filled by sink.prepare() ahead of the transaction: the numeric rows in binary COPY form
    # and the minutes (ms // 60000) they fall in
    numeric_copy: bytes | None = None
    minutes: set[int] = field(default_factory=set)

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
            fast = self._fast(gateway, payload)
            if fast is not None:
                return fast, []
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

    def _fast(self, gateway: str, payload: bytes) -> DecodedBatch | None:
        """The common case without pydantic: plain JSON types, known points, nothing odd.

        It accepts a strict subset of what the model accepts (every reading of a registered
        point of this gateway, in canonical form) and returns exactly what `decode` would;
        anything else returns None and takes the validating path, which explains rejections.
        Known points need no id check: they were validated when registered.
        """
        try:
            obj = orjson.loads(payload)
            if type(obj) is not dict or obj.keys() != _TOP_KEYS:
                return None
            stream, seq, readings = obj["stream"], obj["seq"], obj["readings"]
            if (type(stream) is not str or not _CANONICAL_UUID.fullmatch(stream)
                    or type(seq) is not int or seq < 0 or type(readings) is not list
                    or not 0 < len(readings) <= _MAX_READINGS):
                return None
            batch = DecodedBatch(gateway, stream, seq)
            numeric, text, points = batch.numeric, batch.text, self.points
            for r in readings:
                # exactly device, point, ts, value (+ quality): a missing one raises KeyError
                n = len(r) if type(r) is dict else 0
                if n != 4 and not (n == 5 and "quality" in r):
                    return None
                ref = points.get((r["device"], r["point"]))
                ts, value = r["ts"], r["value"]
                quality = _QUALITY.get(r.get("quality", "good"))
                if (ref is None or ref.gateway != gateway or quality is None
                        or type(ts) is not int or not 0 <= ts <= _MAX_TS):
                    return None
                if ref.is_text:
                    if value is not None and type(value) not in (str, *_NUMBER):
                        return None
                    text.append((ts, ref.point_id, None if value is None else str(value),
                                 quality))
                elif value is None:
                    numeric.append((ts, ref.point_id, None, quality))
                elif type(value) in _NUMBER:
                    numeric.append((ts, ref.point_id, float(value), quality))
                else:
                    return None
            return batch
        except (orjson.JSONDecodeError, TypeError, KeyError):  # TypeError: unhashable values
            return None

    def _dead(self, topic: str, payload: bytes, reason: str, detail: str) -> DeadLetter:
        if reason not in self.logged_reasons:
            # once per kind: a misbehaving gateway must not flood the log
            self.logged_reasons.add(reason)
            log.warning("dead letter (%s) on %s: %s", reason, topic, detail[:300])
        return DeadLetter(topic, payload, reason, detail)
