"""One device's latest values, refreshed together for every device asked about (issue #21).

`GET /v1/devices/{device}/latest` was one indexed query per request: at most ~0.45 of the
answers per second the same query gave issued directly (docs/api.md), because the query
and its round trip were half of what the API spent on a request. The big screens, the
consoles and the departments' services ask for the same devices again and again, so here,
per API process:

- a device asked about for the first time (or after `MAX_AGE_S` without being asked) is
  fetched alone; concurrent first requests for it share that fetch;
- its answer is then served from memory while younger than `MAX_AGE_S`; the first request
  that finds an answer older than `FRESH_S` starts one background refresh of *every* device
  asked about within the last `MAX_AGE_S`: one query for all of them, however many;
- a device nobody asked about for `MAX_AGE_S` is forgotten (memory holds what is in use).

The staleness bound is the latest-of-many page's (api/shared_answers.py): an answer reflects
the database as of at most `MAX_AGE_S` before it is sent, counted from the start of the
query that computed it; ingestion itself commits the latest values at batch granularity.
The department a device belongs to is part of the answer, and the caller's right to see it
is checked on every request against it (a device moved shows in its new department within
`MAX_AGE_S`, as on the page).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from api.shared_answers import FRESH_S, MAX_AGE_S
from cityops.errors import NotFound

log = logging.getLogger(__name__)


class DeviceAnswer(NamedTuple):
    at: float  # the clock (time.monotonic) at the start of the query that computed it
    department: str | None
    body: bytes  # the JSON of DeviceLatest


# the answers of these devices, keyed by device (a device not registered is absent)
FetchMany = Callable[[list[str]], Awaitable[dict[str, tuple[str | None, bytes]]]]


class DeviceAnswers:
    def __init__(self, fetch: FetchMany, fresh_s: float = FRESH_S,
                 max_age_s: float = MAX_AGE_S, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.fetch, self.fresh_s, self.max_age_s, self.clock = fetch, fresh_s, max_age_s, clock
        self._answers: dict[str, DeviceAnswer] = {}
        self._asked: dict[str, float] = {}  # device: when last asked about
        self._alone: dict[str, asyncio.Task[DeviceAnswer]] = {}
        self._refresh: asyncio.Task[None] | None = None
        self.fetched = self.refreshed = self.served = 0  # first fetches, refreshes, from memory

    async def get(self, device: str) -> DeviceAnswer:
        """This device's answer; NotFound when it is not registered."""
        now = self.clock()
        self._asked[device] = now
        found = self._answers.get(device)
        if found is not None and now - found.at < self.max_age_s:
            if now - found.at >= self.fresh_s and self._refresh is None:
                self._refresh = asyncio.get_running_loop().create_task(self._refresh_asked())
                self._refresh.add_done_callback(_retrieved)
            self.served += 1
            return found
        task = self._alone.get(device)
        if task is None:
            task = self._alone[device] = asyncio.get_running_loop().create_task(
                self._fetch_alone(device))
            task.add_done_callback(_retrieved)
        # shielded: a caller that goes away does not cancel the others' fetch
        return await asyncio.shield(task)

    async def _fetch_alone(self, device: str) -> DeviceAnswer:
        started = self.clock()
        try:
            got = (await self.fetch([device])).get(device)
        finally:
            self._alone.pop(device, None)
        if got is None:
            raise NotFound(f"device {device!r} is not registered")
        self.fetched += 1
        answer = self._answers[device] = DeviceAnswer(started, *got)
        return answer

    async def _refresh_asked(self) -> None:
        started = self.clock()
        try:
            self._forget_before(started - self.max_age_s)
            devices = list(self._asked)
            got = await self.fetch(devices)
        except BaseException:
            log.debug("device answers not refreshed", exc_info=True)
            raise  # nobody waits for it: the next request past FRESH_S retries
        finally:
            self._refresh = None
        for device in devices:
            old = self._answers.get(device)
            if old is not None and old.at >= started:
                continue  # fetched alone meanwhile: that answer is the newer
            if device in got:
                self._answers[device] = DeviceAnswer(started, *got[device])
            elif old is not None:
                del self._answers[device]  # no longer registered: the next request says so
        self.refreshed += 1

    def _forget_before(self, moment: float) -> None:
        for device in [d for d, at in self._asked.items() if at < moment]:
            del self._asked[device]
            self._answers.pop(device, None)


def _retrieved(task: asyncio.Task) -> None:
    """A fetch's error reaches the requests awaiting it; one nobody awaits is dropped here."""
    if not task.cancelled():
        task.exception()
