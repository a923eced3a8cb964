"""Telemetry bytes -> rows to store, or dead letters that say why not.

Validation is per reading where it can be: a batch whose envelope (stream, seq, the list) is
valid keeps its good readings, and each rejected reading is dead-lettered with its reason, so
nothing accepted is lost and one bad value does not cost the rest. A message that is not
strict JSON (duplicate keys) or whose envelope is wrong is dead-lettered whole.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from cityops import wire
from cityops.errors import WireError

log = logging.getLogger(__name__)

_TOP_KEYS = ({"stream", "seq", "readings"}, {"stream", "seq", "groups"},
             {"stream", "seq", "readings", "groups"})
_GROUP_KEYS = {"device", "ts", "points", "values"}
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_QUALITY = {q.value: code for q, code in wire.QUALITY_CODES.items()}
_MAX_READINGS = wire.MAX_BATCH_READINGS
_NUMBER = (int, float, bool)
DEFAULT_MAX_PAST_S = 30 * 86400  # as long as batch keys are kept (retention: 30 days)
DEFAULT_MAX_FUTURE_S = 300
# a telemetry message of the wire's 10,000 readings is well under 4 MiB; a bigger one is
# dead-lettered unparsed (parsing costs many times its size), keeping its first 64 KiB
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
DEAD_LETTER_KEEP_BYTES = 64 * 1024


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


class _Envelope(BaseModel):
    """wire.Telemetry with the readings and groups left raw, to validate them one by one."""

    model_config = ConfigDict(extra="forbid")
    stream: uuid.UUID
    seq: wire.Seq
    readings: list[Any] | None = Field(None, min_length=1, max_length=_MAX_READINGS)
    groups: list[Any] | None = Field(None, min_length=1, max_length=_MAX_READINGS)


class _Rejects:
    """Rejected readings of one message, grouped by reason, each with what was wrong."""

    def __init__(self) -> None:
        # reason -> (rejected readings, rejected groups, problems)
        self.by_reason: dict[str, tuple[list[Any], list[Any], list[str]]] = {}

    def add(self, reason: str, raw: Any, problem: str, kind: str = "readings") -> None:
        readings, groups, problems = self.by_reason.setdefault(reason, ([], [], []))
        (groups if kind == "groups" else readings).append(raw)
        problems.append(problem)


class Decoder:
    """Knows the registered points; `points` maps (device, point) -> PointRef.

    Readings stamped more than `max_past_s` before now or `max_future_s` after it are
    dead-lettered (`out_of_window`): a clock at 1970 or in the year 3000 is not data.
    """

    def __init__(self, points: dict[tuple[str, str], PointRef], *,
                 max_past_s: float = DEFAULT_MAX_PAST_S,
                 max_future_s: float = DEFAULT_MAX_FUTURE_S,
                 clock: Callable[[], float] = time.time,
                 on_foreign: Callable[[], None] | None = None) -> None:
        self.points = points
        self.on_foreign = on_foreign
        self._logged_foreign: set[str] = set()
        self.max_past_ms, self.max_future_ms = int(max_past_s * 1000), int(max_future_s * 1000)
        self.clock = clock
        self._window, self._window_until = (0, 0), float("-inf")
        self.logged_reasons: set[str] = set()

    @property
    def points(self) -> dict[tuple[str, str], PointRef]:
        return self._points

    @points.setter
    def points(self, points: dict[tuple[str, str], PointRef]) -> None:
        """Also the known gateways: those with points (ingestion/registry.py adds the
        registered ones without any)."""
        self._points = points
        self.gateways = {ref.gateway for ref in points.values()}

    def window(self) -> tuple[int, int]:
        """[now - max past, now + max future] in ms; kept for 100 ms (a few thousand
        messages): single-reading messages would otherwise pay for the clock each."""
        now = self.clock()
        if now >= self._window_until:
            ms = int(now * 1000)
            self._window = (max(0, ms - self.max_past_ms),
                            min(wire.MAX_EPOCH_MS, ms + self.max_future_ms))
            self._window_until = now + 0.1
        return self._window

    def decode(self, topic: str, payload: bytes) -> tuple[DecodedBatch | None, list[DeadLetter]]:
        if len(payload) > MAX_MESSAGE_BYTES:
            return None, [self._dead(topic, payload[:DEAD_LETTER_KEEP_BYTES], "too_large",
                                     f"{len(payload)} bytes is over the limit of "
                                     f"{MAX_MESSAGE_BYTES}; the first {DEAD_LETTER_KEEP_BYTES}"
                                     " are kept")]
        lo, hi = self.window()
        try:
            gateway = wire.gateway_of(topic, "telemetry")
            if gateway not in self.gateways:
                self._foreign(gateway)
                return None, []
            fast = self._fast(gateway, payload, lo, hi)
            if fast is not None:
                return fast, []
            return self._validating(topic, gateway, payload, lo, hi)
        except WireError as err:
            reason = str(err.context.get("reason", "bad_topic"))
            return None, [self._dead(topic, payload, reason, err.detail)]

    def _validating(self, topic: str, gateway: str, payload: bytes, lo: int,
                    hi: int) -> tuple[DecodedBatch, list[DeadLetter]]:
        """The path that explains: every rejected reading gets a reason and a detail."""
        wire.parse_json(payload)  # duplicate keys: the whole message
        stream, seq, located, rejects = _validate(payload)
        batch = DecodedBatch(gateway, stream, seq)
        for where, r in located:
            if not lo <= r.ts <= hi:
                rejects.add("out_of_window", r.model_dump(mode="json"),
                            f"{where}.ts: {r.ts} is outside [{lo}, {hi}] (now - max past,"
                            " now + max future)")
                continue
            ref = self.points.get((r.device, r.point))
            if ref is None or ref.gateway != gateway:
                why = "unknown point" if ref is None else f"device not on gateway {gateway}"
                rejects.add("unknown_point", r.model_dump(mode="json"),
                            f"{r.device}/{r.point}: {why}")
                continue
            quality = wire.QUALITY_CODES[r.quality]
            if ref.is_text:
                text = None if r.value is None else str(r.value)
                batch.text.append((r.ts, ref.point_id, text, quality))
            elif isinstance(r.value, str):
                rejects.add("unknown_point", r.model_dump(mode="json"),
                            f"{r.device}/{r.point}: text value for a numeric point")
            else:
                number = None if r.value is None else float(r.value)
                batch.numeric.append((r.ts, ref.point_id, number, quality))
        dead = [self._dead(topic, _batch_bytes(stream, seq, readings, groups), reason,
                           "; ".join(problems))
                for reason, (readings, groups, problems) in rejects.by_reason.items()]
        return batch, dead

    def _fast(self, gateway: str, payload: bytes, lo: int, hi: int) -> DecodedBatch | None:
        """The common case without pydantic: plain JSON types, known points, nothing odd.

        It accepts a strict subset of what the validating path accepts (every reading of a
        registered point of this gateway, in canonical form, inside the time window) and
        returns exactly what that path would; anything else returns None and takes the
        validating path, which explains rejections. Known points need no id check: they
        were validated when registered.

        Duplicate keys: orjson keeps the last silently. With no escape in the payload,
        every `"` delimits a string, so the payload's quote count is twice its strings; a
        duplicate key adds strings that the parsed object lacks, so the counts differ.
        """
        try:
            obj = orjson.loads(payload)
            if type(obj) is not dict or obj.keys() not in _TOP_KEYS:
                return None
            stream, seq = obj["stream"], obj["seq"]
            if (type(stream) is not str or not _CANONICAL_UUID.fullmatch(stream)
                    or type(seq) is not int or not 0 <= seq <= wire.INT64_MAX):
                return None
            batch = DecodedBatch(gateway, stream, seq)
            strings = 1 + len(obj)  # the keys and the stream
            if "readings" in obj:
                strings += self._fast_readings(batch, obj["readings"], lo, hi)
            if "groups" in obj:
                strings += self._fast_groups(batch, obj["groups"], lo, hi)
            # any backslash (rare from an agent: orjson escapes only quotes, backslashes and
            # control characters) takes the validating path; `in` on one byte is a memchr
            if (b"\\" in payload or payload.count(b'"') != 2 * strings
                    or not 0 < batch.count <= _MAX_READINGS):
                return None
            return batch
        except (orjson.JSONDecodeError, TypeError, KeyError, _NotFast):
            return None  # TypeError: unhashable values; KeyError: a key missing

    def _fast_readings(self, batch: DecodedBatch, readings: Any, lo: int, hi: int) -> int:
        """The readings of a list into the batch; the strings they hold (see _fast)."""
        if type(readings) is not list or not readings:
            raise _NotFast
        gateway, points, strings = batch.gateway, self._points, 0
        for r in readings:
            # exactly device, point, ts, value (+ quality): a missing one raises KeyError
            n = len(r) if type(r) is dict else 0
            if n != 4 and not (n == 5 and "quality" in r):
                raise _NotFast
            ref = points.get((r["device"], r["point"]))
            ts, value = r["ts"], r["value"]
            quality = _QUALITY.get(r.get("quality", "good"))
            if (ref is None or ref.gateway != gateway or quality is None
                    or type(ts) is not int or not lo <= ts <= hi):
                raise _NotFast
            strings += n + 2 + (n == 5) + (type(value) is str)
            _fast_row(batch, ref, ts, value, quality)
        return strings

    def _fast_groups(self, batch: DecodedBatch, groups: Any, lo: int, hi: int) -> int:
        """The readings of groups into the batch; the strings they hold (see _fast)."""
        if type(groups) is not list or not groups:
            raise _NotFast
        gateway, points, strings = batch.gateway, self._points, 0
        for g in groups:
            keys = g.keys() if type(g) is dict else ()
            if keys != _GROUP_KEYS and not (len(keys) == 5 and keys - _GROUP_KEYS == {"quality"}):
                raise _NotFast
            device, ts, names, values = g["device"], g["ts"], g["points"], g["values"]
            qualities = g.get("quality")
            if (type(device) is not str or type(ts) is not int or not lo <= ts <= hi
                    or type(names) is not list or type(values) is not list
                    or not names or len(values) != len(names)):
                raise _NotFast
            codes = _fast_qualities(qualities, len(names))
            strings += len(keys) + 1 + len(names) + len(qualities or ())
            for name, value, quality in zip(names, values, codes, strict=True):
                ref = points.get((device, name))
                if ref is None or ref.gateway != gateway or type(name) is not str:
                    raise _NotFast
                strings += type(value) is str
                _fast_row(batch, ref, ts, value, quality)
        return strings

    def _foreign(self, gateway: str) -> None:
        """A gateway not registered here: on a broker several deployments share,
        each deployment's workers get every gateway's telemetry (their groups differ), so
        another deployment's is neither stored nor dead-lettered; it is counted."""
        if self.on_foreign is not None:
            self.on_foreign()
        if gateway not in self._logged_foreign and len(self._logged_foreign) < 1000:
            self._logged_foreign.add(gateway)
            log.info("telemetry of gateway %s, not registered here: ignored (another"
                     " deployment's, or not registered yet)", gateway)

    def _dead(self, topic: str, payload: bytes, reason: str, detail: str) -> DeadLetter:
        # a detail may quote a key of the payload, and a text column cannot hold NUL: one such
        # key would make the database refuse the whole flush
        detail = detail.replace("\x00", "\\u0000")
        if reason not in self.logged_reasons:
            # once per kind: a misbehaving gateway must not flood the log
            self.logged_reasons.add(reason)
            log.warning("dead letter (%s) on %s: %s", reason, topic, detail[:300])
        return DeadLetter(topic, payload, reason, detail)


class _NotFast(Exception):
    """Something the fast path does not take: the validating path decides."""


def _fast_qualities(qualities: Any, count: int) -> list[int]:
    if qualities is None:
        return [0] * count
    if type(qualities) is not list or len(qualities) != count:
        raise _NotFast
    codes = [_QUALITY.get(q) for q in qualities]  # TypeError for an unhashable one
    if None in codes:
        raise _NotFast
    return codes  # type: ignore[return-value]


def _fast_row(batch: DecodedBatch, ref: PointRef, ts: int, value: Any, quality: int) -> None:
    kind = type(value)
    if ref.is_text:
        if value is not None and kind not in (str, *_NUMBER):
            raise _NotFast
        if kind is str and "\x00" in value:
            raise _NotFast
        batch.text.append((ts, ref.point_id, None if value is None else str(value), quality))
    elif value is None:
        batch.numeric.append((ts, ref.point_id, None, quality))
    elif kind in _NUMBER:
        # orjson refuses NaN and infinite floats, and reads integers beyond 64 bits as
        # floats: all finite, as the model requires (wire.WireInt)
        batch.numeric.append((ts, ref.point_id, float(value), quality))
    else:
        raise _NotFast


Located = list[tuple[str, wire.WireReading]]


def _validate(payload: bytes) -> tuple[str, int, Located, _Rejects]:
    """(stream, seq, the valid readings with where they are, the rejected ones); WireError
    when the envelope itself is wrong. Groups come out as their readings, each in list form."""
    rejects = _Rejects()
    try:
        message = wire.Telemetry.model_validate_json(payload)
        return (str(message.stream), message.seq,
                _located(message.readings, message.groups), rejects)
    except PydanticValidationError as err:
        bad = _bad_items(err)
        if bad is None:
            raise wire.schema_error(err) from err
    envelope = _Envelope.model_validate_json(payload)  # valid: only readings/groups had errors
    good: dict[str, list] = {"readings": [], "groups": []}
    for key, model in (("readings", wire.WireReading), ("groups", wire.WireGroup)):
        for i, raw in enumerate(getattr(envelope, key) or ()):
            if (key, i) in bad:
                rejects.add("schema", raw, bad[(key, i)], key)
            else:
                good[key].append((i, model.model_validate(raw)))
    sent = len(envelope.readings or ()) + sum(  # the bad groups' points count too
        len(g["points"]) for g in envelope.groups or ()
        if type(g) is dict and type(g.get("points")) is list)
    if sent > _MAX_READINGS:
        raise WireError(f"payload: {sent} readings in one batch, more than {_MAX_READINGS}",
                        reason="schema")
    located = [(f"readings.{i}", r) for i, r in good["readings"]]
    for i, group in good["groups"]:
        located.extend(_group_readings(i, group))
    return str(envelope.stream), envelope.seq, located, rejects


def _located(readings: list[wire.WireReading] | None,
             groups: list[wire.WireGroup] | None) -> Located:
    located = [(f"readings.{i}", r) for i, r in enumerate(readings or ())]
    for i, group in enumerate(groups or ()):
        located.extend(_group_readings(i, group))
    return located


def _group_readings(index: int, group: wire.WireGroup) -> Located:
    """A group's readings as list-form readings (validated already: no second check)."""
    qualities = group.quality or [wire.Quality.GOOD] * len(group.points)
    return [(f"groups.{index}",
             wire.WireReading.model_construct(device=group.device, point=point, ts=group.ts,
                                              value=value, quality=quality))
            for point, value, quality in zip(group.points, group.values, qualities, strict=True)]


def _bad_items(err: PydanticValidationError) -> dict[tuple[str, int], str] | None:
    """(readings|groups, index) -> first problem of each invalid reading or group; None if
    anything else is invalid (the envelope: the whole message)."""
    bad: dict[tuple[str, int], str] = {}
    for e in err.errors():
        loc = e["loc"]
        if len(loc) < 2 or loc[0] not in ("readings", "groups") or type(loc[1]) is not int:
            return None
        where = ".".join(str(p) for p in loc)
        bad.setdefault((str(loc[0]), loc[1]), f"{where}: {e['msg']}")
    return bad


def _batch_bytes(stream: str, seq: int, readings: list[Any], groups: list[Any]) -> bytes:
    """The rejected readings and groups as a telemetry message of their own batch key. json,
    not orjson: a rejected reading may hold what orjson cannot write (an integer beyond 64
    bits). A reading of a valid group rejected on its own comes as a list-form reading."""
    body: dict[str, Any] = {"stream": stream, "seq": seq}
    if readings:
        body["readings"] = readings
    if groups:
        body["groups"] = groups
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
