"""What api/rollup_watch.py makes of what it hears, without a database: the closed horizon
from a reload, lowered by a late minute and by nothing else, unknown while not listening;
the directory emptied by a registry notification and refusing a row read before it."""

from __future__ import annotations

from datetime import UTC, datetime

from api.bucket_cache import BucketCache
from api.rollup_watch import LATE_CHANNEL, ON_TIME_S, PointDirectory, RollupWatch
from ingestion.registry import CHANNEL as REGISTRY_CHANNEL
from ingestion.rollups import NOTIFY_CHANNEL as REFRESH_CHANNEL


class _Reload:
    """A connection answering the reload's query with (oldest dirty, now)."""

    def __init__(self, oldest: float | None, now: float) -> None:
        self.row = (oldest, now)

    async def execute(self, _sql: str) -> _Reload:
        return self

    async def fetchone(self) -> tuple:
        return self.row


def _at(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


async def test_the_horizon_is_the_reload_less_on_time_marks_lowered_by_late_minutes() -> None:
    watch = RollupWatch(BucketCache(1 << 20))
    await watch._reload(_Reload(None, 1_000_000_030.5))
    assert watch.closed_before() is None, "not listening: unknown"
    watch.cache.listening.set()
    minute = 1_000_000_020  # the reload's minute
    assert watch.closed_before() == _at(minute - ON_TIME_S)
    assert watch.on_note(LATE_CHANNEL, str(minute - 7200)) is False
    assert watch.closed_before() == _at(minute - 7200)
    watch.on_note(LATE_CHANNEL, str(minute - 3600))  # a later late minute: the older holds
    assert watch.closed_before() == _at(minute - 7200)
    assert watch.on_note(REFRESH_CHANNEL, "[[0, 60]]") is True, "a refresh asks a reload"
    await watch._reload(_Reload(minute - 30, minute + 15))
    assert watch.closed_before() == _at(minute - ON_TIME_S), "older than what is dirty"
    await watch._reload(_Reload(minute - 600, minute + 15))
    assert watch.closed_before() == _at(minute - 600)
    assert watch.on_note(LATE_CHANNEL, "garbage") is True, "unreadable: read again"


def test_the_directory_forgets_on_registry_notes_and_refuses_rows_read_before() -> None:
    directory = PointDirectory(max_entries=2)
    watch = RollupWatch(BucketCache(1 << 20), directory)
    generation = directory.generation
    directory.put("d1", "v", ("dept", 1, "float32"), generation)
    assert directory.get("d1", "v") is None, "not listening: nothing kept"
    directory.usable = True
    directory.put("d1", "v", ("dept", 1, "float32"), generation)
    assert directory.get("d1", "v") == ("dept", 1, "float32")
    read_before = directory.generation
    watch.on_note(REGISTRY_CHANNEL, "devices")
    assert directory.get("d1", "v") is None
    directory.put("d2", "v", ("dept", 2, "float32"), read_before)
    assert directory.get("d2", "v") is None, "a row read before the change is not kept"
    for i in range(3):
        directory.put(f"d{i}", "v", ("dept", i, "float32"), directory.generation)
    assert len(directory.entries) <= 2
