"""Readings as the agent carries them to the queue, and their JSON for the wire.

A polled device gives a whole block of points at one time; building a Reading (and a dict
for orjson) per point per poll, and comparing each with the point's last, was most of what
the agent spent per reading beyond the Modbus request itself (`make bench-agent`, profiled).
So a poll can come as a ReadingBlock: one device, its point names fixed per request (a
Layout, made once per driver) and the values of this poll, column-wise. It iterates as
Readings for whoever wants them; the recorder writes it to the wire from a template made
once per layout.

On the wire a block goes as `groups` (issue #21): one group per request, `{"device", "ts",
"points", "values", "quality"?}`, the names once per layout: about a quarter of the bytes of
the `readings` list (81 bytes a reading, 60 of them repeated names), which the agent pays for
in its SQLite append and in the kernel's copy to the broker. `telemetry_form: readings` keeps
the list form for an ingestion older than the grouped form (docs/wire.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import orjson

from cityops.wire import Quality
from edge_agents.points import Reading

_TS = b"\x00"  # where the time goes in a template: never in orjson's output (NUL is escaped)


class Layout:
    """One device's points as one request reads them: the names in the order of the values,
    and the JSON around them made once."""

    __slots__ = ("_group", "_template", "device", "names")

    def __init__(self, device: str, names: Sequence[str]) -> None:
        self.device, self.names = device, tuple(names)
        self._template: bytes | None = None
        self._group: tuple[bytes, bytes] | None = None

    def group_template(self) -> tuple[bytes, bytes]:
        """A group of this layout: the bytes before its time and those between the time and
        its values."""
        if self._group is None:
            self._group = (b'{"device":' + orjson.dumps(self.device) + b',"ts":',
                           b',"points":' + orjson.dumps(self.names) + b',"values":')
        return self._group

    def template(self) -> bytes:
        """The readings of this layout with quality good: `%b` where each value goes, _TS
        where the time goes."""
        if self._template is None:
            device = orjson.dumps(self.device).replace(b"%", b"%%")
            self._template = b",".join(
                b'{"device":' + device + b',"point":'
                + orjson.dumps(name).replace(b"%", b"%%")
                + b',"ts":' + _TS + b',"value":%b,"quality":"good"}'
                for name in self.names)
        return self._template


class ReadingBlock:
    """A device's readings of one poll: per request, its layout, time, values, and qualities
    (None when every one is good). Stamped by the agent at the time of reading, so a block
    never repeats an earlier one (DeviceRunner keeps no last value for it)."""

    __slots__ = ("count", "device", "parts")

    def __init__(self, device: str) -> None:
        self.device = device
        self.parts: list[tuple[Layout, int, list, list[Quality] | None]] = []
        self.count = 0

    def add(self, layout: Layout, ts_ms: int, values: list,
            qualities: list[Quality] | None = None) -> None:
        self.parts.append((layout, ts_ms, values, qualities))
        self.count += len(values)

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Reading]:
        for part in self.parts:
            yield from _part_readings(*part)

    def __getitem__(self, index: int) -> Reading:
        return list(self)[index]

    def split(self, limit: int) -> list[ReadingBlock]:
        """Blocks of at most `limit` readings each (a batch holds at most so many)."""
        blocks, current = [], ReadingBlock(self.device)
        for layout, ts, values, qualities in self.parts:
            start = 0
            while start < len(values):
                if current.count == limit:
                    blocks.append(current)
                    current = ReadingBlock(self.device)
                end = min(len(values), start + limit - current.count)
                part = layout if (start, end) == (0, len(values)) else \
                    Layout(layout.device, layout.names[start:end])
                current.add(part, ts, values[start:end],
                            qualities[start:end] if qualities else None)
                start = end
        if current.count:
            blocks.append(current)
        return blocks

    def body(self) -> bytes:
        """The readings as JSON objects separated by commas, without the brackets."""
        return b",".join(_part_json(*part) for part in self.parts)

    def groups_body(self) -> bytes:
        """The block as groups, one per request, separated by commas, without the brackets."""
        return b",".join(_group_json(*part) for part in self.parts)


def _group_json(layout: Layout, ts: int, values: list,
                qualities: list[Quality] | None) -> bytes:
    head, middle = layout.group_template()
    if qualities is None or all(q is Quality.GOOD for q in qualities):
        return b"%b%d%b%b}" % (head, ts, middle, orjson.dumps(values))
    return b'%b%d%b%b,"quality":%b}' % (head, ts, middle, orjson.dumps(values),
                                        orjson.dumps(qualities))


def _part_json(layout: Layout, ts: int, values: list, qualities: list[Quality] | None) -> bytes:
    if qualities is None and str not in set(map(type, values)):
        # numbers and booleans: orjson writes them all in one call and none holds a comma
        numbers = orjson.dumps(values)[1:-1].split(b",")
        return layout.template().replace(_TS, b"%d" % ts) % tuple(numbers)
    return readings_body(_part_readings(layout, ts, values, qualities))


def _part_readings(layout: Layout, ts: int, values: list,
                   qualities: list[Quality] | None) -> Iterator[Reading]:
    marks = qualities or [Quality.GOOD] * len(values)
    for name, value, quality in zip(layout.names, values, marks, strict=True):
        yield Reading(layout.device, name, ts, value, quality)


def readings_body(readings: Iterator[Reading] | Sequence[Reading]) -> bytes:
    """Readings one by one as JSON objects separated by commas, without the brackets."""
    return orjson.dumps([
        {"device": r.device, "point": r.point, "ts": r.ts_ms, "value": r.value,
         "quality": r.quality.value}
        for r in readings
    ])[1:-1]


def encode_batch(items: Sequence[ReadingBlock | Sequence[Reading]]) -> bytes:
    """The `readings` array of a telemetry batch from blocks and lists of readings."""
    bodies = [item.body() if isinstance(item, ReadingBlock) else readings_body(item)
              for item in items if len(item)]
    return b"[" + b",".join(bodies) + b"]"


def encode_grouped(items: Sequence[ReadingBlock | Sequence[Reading]]) -> bytes:
    """What the queue keeps of a batch in the grouped form: the payload's members after the
    batch key, `"readings":[...],"groups":[...]` (each only when it has any). Blocks become
    groups; readings that came one by one (OPC-UA subscriptions, MQTT, SNMP traps) stay in
    the list. Without blocks it is the plain `readings` array, as encode_batch writes it."""
    groups = [item.groups_body() for item in items
              if isinstance(item, ReadingBlock) and len(item)]
    if not groups:
        return encode_batch(items)
    singles = [readings_body(item) for item in items
               if not isinstance(item, ReadingBlock) and len(item)]
    listed = b'"readings":[' + b",".join(singles) + b"]," if singles else b""
    return listed + b'"groups":[' + b",".join(groups) + b"]"


def telemetry_payload(stream: str, seq: int, stored: bytes) -> bytes:
    """A telemetry message from what the queue keeps of a batch: the `readings` array (the
    list form, and every batch queued before the grouped form) or the payload's members."""
    head = b'{"stream":"%b","seq":%d,' % (stream.encode(), seq)
    if stored[:1] == b"[":
        return head + b'"readings":' + stored + b"}"
    return head + stored + b"}"

