"""Commit receipts: how ingestion groups them, and when the agent sends a batch again."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest

from edge_agents import uplink
from edge_agents.queue import LocalQueue
from edge_agents.uplink import Receipts
from ingestion.decode import DeadLetter, DecodedBatch
from ingestion.receipts import dead_letter_key, ranges, receipt_messages
from tests.helpers import await_for


def test_ranges_are_sorted_inclusive_runs() -> None:
    assert ranges([5, 1, 2, 3, 9, 10, 3]) == [(1, 3), (5, 5), (9, 10)]
    assert ranges([]) == []


def test_one_receipt_per_gateway_and_stream_with_duplicates_and_dead_letters() -> None:
    s1, s2 = str(uuid.uuid4()), str(uuid.uuid4())
    batches = [DecodedBatch("gw-a", s1, seq) for seq in (4, 2, 3, 7)]
    batches += [DecodedBatch("gw-b", s2, 1)]
    schema = orjson.dumps({"stream": s1, "seq": 5, "readings": []})
    dead = [DeadLetter("cityops/v1/gw-a/telemetry", schema, "schema", "readings: too short"),
            DeadLetter("cityops/v1/gw-a/telemetry", b"{oops", "invalid_json", "")]
    out = {topic: orjson.loads(payload) for topic, payload in receipt_messages(batches, dead)}
    assert out == {
        "cityops/v1/gw-a/receipts": {"stream": s1, "seqs": [[2, 5], [7, 7]]},
        "cityops/v1/gw-b/receipts": {"stream": s2, "seqs": [[1, 1]]},
    }


@pytest.mark.parametrize("payload", [
    b"[1]", b'{"stream": "x", "seq": 1}', b'{"stream": "%s", "seq": -1}',
    b'{"stream": "%s", "seq": 1.5}', b'{"stream": "%s", "seq": 9223372036854775808}',
])
def test_unreadable_dead_letters_have_no_key(payload: bytes) -> None:
    if b"%s" in payload:
        payload = payload % str(uuid.uuid4()).encode()
    assert dead_letter_key(DeadLetter("cityops/v1/gw/telemetry", payload, "schema", "")) is None


async def test_a_batch_overtaken_by_receipts_is_sent_again_after_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uplink, "CHECK_RECEIPTS_S", 0.0)
    queue = LocalQueue(tmp_path / "q.db", max_bytes=1 << 20)
    await queue.open()
    for i in range(4):
        await queue.append(f"[{i}]".encode(), 1)
    receipts = Receipts(queue, timeout_s=0.3)
    for seq in (1, 2, 3, 4):
        receipts.published(seq)
    assert await receipts.overdue() == [], "no receipts at all: ingestion down, nothing resent"
    assert await receipts.committed([(2, 3)]) == 2
    assert (queue.batches, sorted(receipts.waiting)) == (2, [1, 4])
    assert await receipts.overdue() == [], "overtaken, but not for long yet"
    due = await await_for(receipts.overdue, timeout_s=5, what="batch 1 overdue")
    assert [b.seq for b in due] == [1], "4 was published after every receipted batch"
    assert sorted(receipts.waiting) == [4]
    receipts.published(1)  # sent again: waits anew, at the end
    assert await receipts.committed([(0, 1 << 40)]) == 2, "a wide range walks what waits"
    assert (queue.batches, receipts.waiting) == (0, {})
    await queue.close()
