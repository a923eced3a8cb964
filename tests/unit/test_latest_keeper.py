"""The latest-value keeper's rules, as pure logic (ingestion/latest.py; the SQL side is in
tests/integration/test_readings_latest.py): the newest reading per point wins whatever the
order, a store writes the pending rows at most every `every_ms`, only committed readings
become pending, a failed write keeps them, and rows replaced meanwhile stay pending."""

from __future__ import annotations

from ingestion.decode import DecodedBatch
from ingestion.latest import LatestKeeper, Newest


def batch(seq: int, rows: list[tuple], text: list[tuple] | None = None) -> DecodedBatch:
    return DecodedBatch("gw", "s", seq, numeric=rows, text=text or [])


def test_newest_of_batches_keeps_each_points_newest_whatever_the_order() -> None:
    got = Newest.of([batch(1, [(30, 1, 3.0, 0), (10, 1, 1.0, 0), (20, 2, 2.0, 0)]),
                     batch(2, [(5, 2, -1.0, 2), (30, 1, 4.0, 1)])],)
    # equal times: the later row wins (a resend of a correction)
    assert got.numeric == {1: (30, 1, 4.0, 1), 2: (20, 2, 2.0, 0)}
    merged = Newest({1: (40, 1, 9.0, 0), 3: (1, 3, 0.0, 0)})
    merged.merge(got)  # older rows never replace newer ones
    assert merged.numeric == {1: (40, 1, 9.0, 0), 2: (20, 2, 2.0, 0), 3: (1, 3, 0.0, 0)}


def test_params_are_array_literals_with_text_escaped() -> None:
    rows = Newest({2: (7, 2, 1.5, 0), 1: (8, 1, None, 2)}, {3: (9, 3, 'a "b" \\ {,}', 1)})
    assert rows.params() == ["{1,2,3}", "{8,7,9}", "{NULL,1.5,NULL}",
                             '{NULL,NULL,"a \\"b\\" \\\\ {,}"}', "{2,0,1}"]
    assert Newest({1: (8, 1, 2.0, 0)}).params()[3] is None


def test_stores_write_at_most_every_interval_and_only_committed_rows_pend() -> None:
    keeper = LatestKeeper(every_ms=60_000)
    first = Newest({1: (10, 1, 1.0, 0)})
    assert keeper.take(first) is first  # nothing written yet: the first store writes
    second = Newest({1: (20, 1, 2.0, 0)})
    assert keeper.take(second) is None  # one store writes at a time
    keeper.ended(first, first, committed=True)
    keeper.ended(second, None, committed=True)
    assert keeper.pending.numeric == {1: (20, 1, 2.0, 0)}
    rolled_back = Newest({2: (30, 2, 3.0, 0)})
    assert keeper.take(rolled_back) is None  # written less than a minute ago
    keeper.ended(rolled_back, None, committed=False)
    assert 2 not in keeper.pending.numeric  # never stored: never pending
    assert not keeper.due()
    keeper.hurry()
    assert keeper.due()


def test_a_failed_write_keeps_the_rows_and_newer_rows_stay_pending() -> None:
    keeper = LatestKeeper(every_ms=0)
    keeper.ended(Newest({1: (10, 1, 1.0, 0), 2: (10, 2, 1.0, 0)}), None, committed=True)
    own = Newest({3: (11, 3, 1.0, 0)})
    written = keeper.take(own)
    assert written is not None and sorted(written.numeric) == [1, 2, 3]
    keeper.ended(own, written, committed=False)  # the transaction failed
    assert sorted(keeper.pending.numeric) == [1, 2]
    written = keeper.take(Newest())
    assert written is not None
    # meanwhile another store committed a newer reading of point 2
    keeper.ended(Newest({2: (12, 2, 5.0, 0)}), None, committed=True)
    keeper.ended(Newest(), written, committed=True)
    assert keeper.pending.numeric == {2: (12, 2, 5.0, 0)}
    assert keeper.due()
