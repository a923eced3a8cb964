"""The newest queued batches kept in memory, so the uplink sends live data without reading
back from SQLite what the recorder has just written there.

Each read was a hop to the queue's thread and back plus a SELECT of the batch (about 90 us of
CPU a batch of 1,000 readings, and the hop's GIL hand-offs showed as a quarter of the agent's
busy samples in `make bench-agent`). Only the event loop's thread touches this: batches are
remembered after their INSERT returned, forgotten when removed. The copy on disk stays the
truth: a batch is in memory only while it is also queued (or just dropped by a full queue, at
worst sent once more, which ingestion's batch key makes harmless).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


class RecentBatches:
    """Batches seq > `complete_from` are all here, unless removed from the queue too."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.complete_from = 2**63  # nothing remembered yet: every peek reads SQLite
        self._batches: OrderedDict[int, Any] = OrderedDict()

    def remember(self, batch: Any) -> None:
        """A batch just queued (seqs grow: it is the newest)."""
        if not self._batches and self.complete_from > batch.seq:
            self.complete_from = batch.seq
        self._batches[batch.seq] = batch
        self.bytes += len(batch.readings_json)
        while self.bytes > self.max_bytes and self._batches:
            seq, old = self._batches.popitem(last=False)
            self.bytes -= len(old.readings_json)
            self.complete_from = seq + 1

    def forget_upto(self, seq: int) -> None:
        """Batches up to `seq` left the queue (dropped oldest first by a full queue)."""
        while self._batches and next(iter(self._batches)) <= seq:
            _, old = self._batches.popitem(last=False)
            self.bytes -= len(old.readings_json)

    def forget(self, seq_ranges: list[tuple[int, int]]) -> None:
        for first, last in seq_ranges:
            if last - first < len(self._batches):
                seqs: Any = range(first, last + 1)
            else:
                seqs = [s for s in self._batches if first <= s <= last]
            for seq in seqs:
                old = self._batches.pop(seq, None)
                if old is not None:
                    self.bytes -= len(old.readings_json)

    def after(self, after_seq: int, limit: int, upto_seq: int | None) -> list | None:
        """What peek() would read, or None when memory may not hold all of it."""
        if after_seq + 1 < self.complete_from:
            return None
        newer = []
        # from the newest back: the uplink asks for what follows its last batch, near the
        # end, and the grouped form's small batches make many to walk past from the front
        for seq in reversed(self._batches):
            if seq <= after_seq:
                break
            newer.append(seq)
        out = []
        for seq in reversed(newer):
            if (upto_seq is not None and seq > upto_seq) or len(out) == limit:
                break
            out.append(self._batches[seq])
        return out
