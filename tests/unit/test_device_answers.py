"""DeviceAnswers (api/device_answers.py), pure logic with a stand-in database and a clock
moved by hand: a device fetched alone once, then served from memory; aged answers of every
device in use refreshed by one fetch; nothing served past its bound; unregistered devices
and devices no longer asked about not kept. The route against the real database:
tests/integration/test_api_fast_reads.py."""

from __future__ import annotations

import asyncio

import pytest

from api.device_answers import DeviceAnswers
from cityops.errors import NotFound


class Database:
    """Devices and their departments; each fetch answers with a body naming the fetch."""

    def __init__(self, devices: dict[str, str]) -> None:
        self.devices, self.fetches = devices, []
        self.gate: asyncio.Event | None = None  # set: fetches wait for it

    async def __call__(self, devices: list[str]) -> dict[str, tuple[str | None, bytes]]:
        self.fetches.append(sorted(devices))
        if self.gate is not None:
            await self.gate.wait()
        n = len(self.fetches)
        return {d: (self.devices[d], f"{d} #{n}".encode()) for d in devices
                if d in self.devices}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _answers(db: Database, clock: Clock, **limits: float) -> DeviceAnswers:
    return DeviceAnswers(db, fresh_s=0.5, max_age_s=1.0, clock=clock, **limits)


async def _in_use(devices: str) -> tuple[Database, Clock, DeviceAnswers]:
    """These devices registered, each asked about once (each fetched alone, in order)."""
    db, clock = Database({d: "water" for d in devices}), Clock()
    answers = _answers(db, clock)
    for device in devices:
        await answers.get(device)
    return db, clock, answers


async def _settled() -> None:
    """Lets a background refresh started by the last get run to its end."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_fetched_alone_once_then_served_from_memory() -> None:
    async def run() -> None:
        db, clock = Database({"a": "water", "b": "roads"}), Clock()
        answers = _answers(db, clock)
        db.gate = asyncio.Event()
        waiting = [asyncio.ensure_future(answers.get("a")) for _ in range(10)]
        await _settled()
        db.gate.set()
        got = await asyncio.gather(*waiting)
        assert db.fetches == [["a"]] and {g.body for g in got} == {b"a #1"}
        assert got[0].department == "water"
        clock.now += 0.4  # fresh: served, nothing fetched
        assert (await answers.get("a")).body == b"a #1"
        await _settled()
        assert db.fetches == [["a"]]
        assert (await answers.get("b")).body == b"b #2"  # another device: its own fetch
        assert answers.fetched == 2 and answers.served == 1
    asyncio.run(run())


def test_aged_answers_of_every_device_in_use_refreshed_by_one_fetch() -> None:
    async def run() -> None:
        db, clock, answers = await _in_use("abc")
        clock.now += 0.6  # aged: still served, all three replaced meanwhile
        assert (await answers.get("a")).body == b"a #1"
        await _settled()
        assert db.fetches[-1] == ["a", "b", "c"] and answers.refreshed == 1
        assert [(await answers.get(d)).body for d in "abc"] == [b"a #4", b"b #4", b"c #4"]
        await _settled()
        assert len(db.fetches) == 4  # and no refresh while they are fresh
    asyncio.run(run())


def test_a_poll_after_the_bound_waits_for_one_refresh_of_all() -> None:
    async def run() -> None:
        db, clock, answers = await _in_use("abcd")
        clock.now += 5.0  # a screen's next poll: every answer past its bound
        db.gate = asyncio.Event()
        polled = [asyncio.ensure_future(answers.get(d)) for d in "abcd"]
        await _settled()
        db.gate.set()
        got = await asyncio.gather(*polled)
        assert db.fetches[4:] == [["a", "b", "c", "d"]]  # one fetch for the whole poll
        assert [g.body for g in got] == [b"a #5", b"b #5", b"c #5", b"d #5"]
        assert answers.served == 0 and answers.refreshed == 1
    asyncio.run(run())


def test_devices_not_asked_about_are_forgotten_and_not_refreshed() -> None:
    async def run() -> None:
        db, clock = Database({"a": "water", "b": "water"}), Clock()
        answers = _answers(db, clock, keep_s=3.0)
        await answers.get("a")
        clock.now += 2.5
        await answers.get("b")
        clock.now += 1.0  # a asked 3.5 s ago (forgotten), b 1 s ago (asked again)
        await answers.get("b")
        assert db.fetches == [["a"], ["b"], ["b"]]
        assert (await answers.get("a")).body == b"a #4"  # a first ask again: alone
        assert answers.fetched == 3 and answers.refreshed == 1
    asyncio.run(run())


def test_at_most_max_devices_kept_the_least_recently_asked_first_out() -> None:
    async def run() -> None:
        db, clock = Database({d: "water" for d in "abc"}), Clock()
        answers = _answers(db, clock, max_devices=2)
        for device in "aba":  # b is now the least recently asked
            await answers.get(device)
        await answers.get("c")  # b goes
        assert db.fetches == [["a"], ["b"], ["c"]]
        clock.now += 0.6
        await answers.get("a")
        await _settled()
        assert db.fetches[-1] == ["a", "c"]
    asyncio.run(run())


def test_no_answer_served_past_its_bound() -> None:
    async def run() -> None:
        _, clock, answers = await _in_use("a")
        clock.now += 1.0
        assert (await answers.get("a")).body == b"a #2"  # waited for a fetch
        assert answers.served == 0
    asyncio.run(run())


def test_unregistered_devices_refused_and_not_kept() -> None:
    async def run() -> None:
        db, clock = Database({"a": "water"}), Clock()
        answers = _answers(db, clock)
        with pytest.raises(NotFound, match="'x' is not registered"):
            await answers.get("x")
        with pytest.raises(NotFound, match="'x' is not registered"):
            await answers.get("x")  # asked again: refused by the refresh it waited for
        await answers.get("a")
        del db.devices["a"]  # removed: dropped at the next refresh, then refused
        clock.now += 0.6
        await answers.get("a")
        await _settled()
        with pytest.raises(NotFound):
            await answers.get("a")
    asyncio.run(run())


def test_a_failed_refresh_keeps_the_answers_and_is_retried() -> None:
    async def run() -> None:
        db, clock, answers = await _in_use("a")
        clock.now += 0.6

        async def broken(devices: list[str]) -> dict:
            raise OSError("database away")
        answers.fetch = broken
        assert (await answers.get("a")).body == b"a #1"
        await _settled()
        answers.fetch = db
        assert (await answers.get("a")).body == b"a #1"  # within its bound; too soon to retry
        clock.now += 0.5
        with pytest.raises(OSError):  # past its bound: waits for the refresh, which fails
            answers.fetch = broken
            await answers.get("a")
        answers.fetch = db
        clock.now += 0.5
        assert (await answers.get("a")).body == b"a #2"
    asyncio.run(run())
