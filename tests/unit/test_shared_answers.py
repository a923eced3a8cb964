"""SharedAnswers (api/shared_answers.py), pure logic with a stand-in computation: one
computation for concurrent askers, fresh answers served, aged ones replaced in the
background, answers past the bound never served, failures passed to the waiters only."""

from __future__ import annotations

import asyncio

import pytest

from api.shared_answers import SharedAnswers


class Counter:
    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.calls, self.delay_s, self.fail = 0, delay_s, fail

    async def __call__(self) -> bytes:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("database away")
        return b"answer %d" % self.calls


def test_concurrent_askers_share_one_computation() -> None:
    async def run() -> None:
        answers, compute = SharedAnswers(), Counter(delay_s=0.05)
        got = await asyncio.gather(*(answers.get("k", compute) for _ in range(20)))
        assert compute.calls == 1 and set(got) == {b"answer 1"}
        assert await answers.get("other", compute) == b"answer 2"  # another key: its own
    asyncio.run(run())


def test_aged_answers_are_refreshed_in_the_background_and_expire() -> None:
    async def run() -> None:
        answers, compute = SharedAnswers(fresh_s=0.05, max_age_s=0.2), Counter()
        assert await answers.get("k", compute) == b"answer 1"
        assert await answers.get("k", compute) == b"answer 1" and compute.calls == 1
        await asyncio.sleep(0.08)  # aged: still served, replaced meanwhile
        assert await answers.get("k", compute) == b"answer 1"
        await asyncio.sleep(0.01)
        assert compute.calls == 2 and await answers.get("k", compute) == b"answer 2"
        await asyncio.sleep(0.25)  # past the bound: the asker waits for a new one
        assert await answers.get("k", compute) == b"answer 3"
    asyncio.run(run())


def test_a_failed_computation_reaches_its_waiters_and_is_not_kept() -> None:
    async def run() -> None:
        answers, broken = SharedAnswers(), Counter(delay_s=0.01, fail=True)
        results = await asyncio.gather(answers.get("k", broken), answers.get("k", broken),
                                       return_exceptions=True)
        assert broken.calls == 1 and all(isinstance(r, RuntimeError) for r in results)
        assert await answers.get("k", Counter()) == b"answer 1"  # tried again at once
        with pytest.raises(RuntimeError):
            await answers.get("j", broken)
    asyncio.run(run())
