"""One computed answer shared by the requests that ask the same thing at about the same time
(issue #21): the latest values of a page of devices.

The big screens, the consoles and other departments' services poll the same page (the latest
of a district's 1,000 devices: 4,000 points, ~0.5 MB of JSON, ~16 ms of the database's CPU).
Computing it per request capped the path at ~60 answers/s on two cores, so here, per API
process and per question (the filters after the caller's department scope, the keyset
position and the page size):

- concurrent requests share one computation (singleflight);
- an answer younger than `FRESH_S` is served as is; one between `FRESH_S` and `MAX_AGE_S`
  is served too while one background computation replaces it (so under steady polling no
  request waits for the database);
- an answer `MAX_AGE_S` old is never served: the request waits for a new one.

The staleness bound: an answer reflects the database as of at most `MAX_AGE_S` before it
is sent, counted from the start of the query that computed it (a value committed by
ingestion, a device added or moved to another department, shows within 1 s). Who may ask
is checked on every request before this is consulted; the answer depends only on the key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
FRESH_S = 0.5
MAX_AGE_S = 1.0

Answer = TypeVar("Answer")  # what a computation gives: a body, or a body and its gzip
Compute = Callable[[], Awaitable[Answer]]


class SharedAnswers(Generic[Answer]):
    def __init__(self, fresh_s: float = FRESH_S, max_age_s: float = MAX_AGE_S) -> None:
        self.fresh_s, self.max_age_s = fresh_s, max_age_s
        self._answers: dict[Hashable, tuple[float, Answer]] = {}  # key: (computed from, it)
        self._running: dict[Hashable, asyncio.Task[Answer]] = {}
        self.computed = self.shared = 0  # computations, and answers served without one

    async def get(self, key: Hashable, compute: Compute) -> Answer:
        now = time.monotonic()
        found = self._answers.get(key)
        if found is not None and now - found[0] < self.max_age_s:
            if now - found[0] >= self.fresh_s and key not in self._running:
                self._start(key, compute)  # replaced in the background; this one served
            self.shared += 1
            return found[1]
        task = self._running.get(key) or self._start(key, compute)
        # shielded: a caller that goes away does not cancel the others' computation
        return await asyncio.shield(task)

    def _start(self, key: Hashable, compute: Compute) -> asyncio.Task[Answer]:
        task = asyncio.get_running_loop().create_task(self._compute(key, compute))
        task.add_done_callback(retrieved)
        self._running[key] = task
        return task

    async def _compute(self, key: Hashable, compute: Compute) -> Answer:
        started = time.monotonic()  # the answer's age counts from before the query
        try:
            body = await compute()
        except BaseException:
            log.debug("shared answer %r not computed", key, exc_info=True)
            raise  # to the requests waiting for it; a background refresh's is dropped
        finally:
            self._running.pop(key, None)
        self.computed += 1
        self._forget_older_than(started - self.max_age_s)
        self._answers[key] = (started, body)
        return body

    def _forget_older_than(self, moment: float) -> None:
        """Answers past their age are never served again: memory holds only what was asked
        for within the last MAX_AGE_S."""
        for key in [k for k, (at, _) in self._answers.items() if at <= moment]:
            del self._answers[key]


def retrieved(task: asyncio.Task) -> None:
    """A background computation nobody awaits fails quietly (the next request retries);
    one awaited passes its error to its waiters (here and api/device_answers.py)."""
    if not task.cancelled():
        task.exception()
