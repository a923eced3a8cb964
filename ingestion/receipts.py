"""Commit receipts: after a flush commits, tell each gateway which of its batches are stored.

The broker's PUBACK to an agent only says the broker has the message; a broker that crashes
before handing it to a worker loses it. So an agent keeps each batch until a receipt on
`cityops/v1/{gateway}/receipts` names it (docs/wire.md). A receipt covers every batch of one
(gateway, stream) in the flush, as inclusive seq ranges: one small message per gateway per
flush, not one per batch or reading.

Receipts go out at QoS 0 after the PUBACKs: a lost receipt only makes the agent send the batch
again later, and the batch key makes that harmless. Duplicates (batches already stored) are
receipted too, so a resend always ends the agent's wait. A dead-lettered message is committed
as well (in `dead_letters`): it is receipted when its stream and seq can be read, else the
agent would resend a batch that can never be stored.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable

import orjson

from cityops import wire
from cityops.errors import WireError
from ingestion.decode import DeadLetter, DecodedBatch

Key = tuple[str, str, int]


def ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted inclusive (first, last) runs of the given seqs."""
    ordered = sorted(set(seqs))  # arrival order is nearly sorted: about linear
    if not ordered:
        return []
    if ordered[-1] - ordered[0] == len(ordered) - 1:
        return [(ordered[0], ordered[-1])]  # the usual case: one unbroken run
    out: list[tuple[int, int]] = []
    first = prev = ordered[0]
    for seq in ordered:
        if seq > prev + 1:
            out.append((first, prev))
            first = seq
        prev = seq
    out.append((first, prev))
    return out


def dead_letter_key(dead: DeadLetter) -> Key | None:
    """The batch key of a dead-lettered message, when its topic, stream and seq are readable."""
    try:
        gateway = wire.gateway_of(dead.topic, "telemetry")
        obj = orjson.loads(dead.payload)
    except (WireError, orjson.JSONDecodeError):
        return None
    if not isinstance(obj, dict):
        return None
    stream, seq = obj.get("stream"), obj.get("seq")
    if type(seq) is not int or not 0 <= seq < 2**63 or not isinstance(stream, str):
        return None
    try:
        return gateway, str(uuid.UUID(stream)), seq
    except ValueError:
        return None


def receipt_messages(
    batches: list[DecodedBatch], dead: list[DeadLetter]
) -> list[tuple[str, bytes]]:
    """(topic, payload) per (gateway, stream) among the committed messages of one flush."""
    grouped: dict[tuple[str, str], list[int]] = defaultdict(list)
    for b in batches:
        grouped[(b.gateway, b.stream)].append(b.seq)
    for d in dead:
        if d.reason != "unknown_point":  # those belong to a batch receipted above
            key = dead_letter_key(d)
            if key is not None:
                grouped[key[:2]].append(key[2])
    out = []
    for (gateway, stream), seqs in grouped.items():
        runs = ranges(seqs)
        # a receipt holds at most 10,000 ranges (the schema's limit): split beyond that
        for i in range(0, len(runs), 10_000):
            payload = orjson.dumps({"stream": stream, "seqs": runs[i:i + 10_000]})
            out.append((wire.receipts_topic(gateway), payload))
    return out
