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


def _answers(db: Database, clock: Clock) -> DeviceAnswers:
    return DeviceAnswers(db, fresh_s=0.5, max_age_s=1.0, clock=clock)


async def _settled() -> None:
    """Lets the background refresh started by the last get run to its end."""
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
        clock.now += 0.4
        assert (await answers.get("a")).body == b"a #1" and db.fetches == [["a"]]
        assert (await answers.get("b")).body == b"b #2"  # another device: its own fetch
        assert answers.fetched == 2 and answers.served == 1
    asyncio.run(run())


def test_aged_answers_of_every_device_in_use_refreshed_by_one_fetch() -> None:
    async def run() -> None:
        db, clock = Database({d: "water" for d in "abc"}), Clock()
        answers = _answers(db, clock)
        for device in "abc":
            await answers.get(device)
        clock.now += 0.6  # aged: still served, all three replaced meanwhile
        assert (await answers.get("a")).body == b"a #1"
        await _settled()
        assert db.fetches[-1] == ["a", "b", "c"] and answers.refreshed == 1
        assert [(await answers.get(d)).body for d in "abc"] == [b"a #4", b"b #4", b"c #4"]
        assert len(db.fetches) == 4  # and no refresh while they are fresh
    asyncio.run(run())


def test_no_answer_served_past_its_bound() -> None:
    async def run() -> None:
        db, clock = Database({"a": "water"}), Clock()
        answers = _answers(db, clock)
        await answers.get("a")
        clock.now += 1.0
        assert (await answers.get("a")).body == b"a #2"  # waited for a fetch of its own
        assert answers.served == 0
    asyncio.run(run())


def test_devices_not_asked_about_are_forgotten_and_not_refreshed() -> None:
    async def run() -> None:
        db, clock = Database({"a": "water", "b": "water"}), Clock()
        answers = _answers(db, clock)
        await answers.get("a")
        clock.now += 0.6
        await answers.get("b")
        clock.now += 0.5  # a asked 1.1 s ago, b 0.5 s ago: b aged, a gone
        await answers.get("b")
        await _settled()
        assert db.fetches == [["a"], ["b"], ["b"]]
        assert (await answers.get("a")).body == b"a #4"  # fetched alone again
    asyncio.run(run())


def test_unregistered_devices_refused_and_not_kept() -> None:
    async def run() -> None:
        db, clock = Database({"a": "water"}), Clock()
        answers = _answers(db, clock)
        with pytest.raises(NotFound, match="'x' is not registered"):
            await answers.get("x")
        with pytest.raises(NotFound):
            await answers.get("x")
        assert db.fetches == [["x"], ["x"]]
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
        db, clock = Database({"a": "water"}), Clock()
        answers = _answers(db, clock)
        await answers.get("a")
        clock.now += 0.6
        devices, db.devices = db.devices, {}

        async def broken(devices: list[str]) -> dict:
            raise OSError("database away")
        answers.fetch = broken
        assert (await answers.get("a")).body == b"a #1"
        await _settled()
        answers.fetch, db.devices = db, devices
        assert (await answers.get("a")).body == b"a #1"  # still within its bound
        await _settled()
        assert (await answers.get("a")).body == b"a #2"
    asyncio.run(run())
