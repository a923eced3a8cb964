"""One device's latest values, refreshed together for the devices in use (issue #21).

`GET /v1/devices/{device}/latest` was one indexed query per request: at most ~0.45 of the
answers per second the same query gave issued directly (docs/api.md), because the query
and its round trip were half of what the API spent on a request. The big screens, the
consoles and the departments' services ask for the same devices again and again, so here,
per API process:

- a device asked about for the first time (or after `KEEP_S` without being asked) is
  fetched alone; concurrent first requests for it share that fetch;
- an answer younger than `MAX_AGE_S` is served from memory;
- a device asked about *again* (within `KEEP_S`) whose answer is older than `FRESH_S`
  starts, if no refresh started within the last `FRESH_S`, one refresh of every device in
  use: one query for all of them, which the requests of those devices then wait for instead
  of fetching alone. So a screen polling 200 devices every 5 s costs one query per poll,
  and steady traffic over 1,000 devices one query per half second, not one per request; a
  device asked about once costs its own fetch;
- a device not asked about for `KEEP_S` is forgotten, and at most `MAX_DEVICES` are kept
  (the least recently asked go first), so a refresh's size is bounded.

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

from api.shared_answers import FRESH_S, MAX_AGE_S, retrieved
from cityops.errors import NotFound

log = logging.getLogger(__name__)
# A device in use costs ~23 us a refresh (14 us of the API's CPU, 9 of the database's, for
# 1,000 devices: 4,000 rows), where its own fetch cost ~0.3 ms: riding along in the
# refreshes that steady traffic runs twice a second is about even with a fetch of its own
# every ~6 s, and a screen polling every 5-10 s gets one refresh per poll (docs/api.md)
KEEP_S = 10.0
MAX_DEVICES = 5_000


class DeviceAnswer(NamedTuple):
    at: float  # the clock (time.monotonic) at the start of the query that computed it
    department: str | None
    body: bytes  # the JSON of DeviceLatest


# the answers of these devices, keyed by device (a device not registered is absent)
FetchMany = Callable[[list[str]], Awaitable[dict[str, tuple[str | None, bytes]]]]


class DeviceAnswers:
    def __init__(self, fetch: FetchMany, fresh_s: float = FRESH_S,
                 max_age_s: float = MAX_AGE_S, keep_s: float = KEEP_S,
                 max_devices: int = MAX_DEVICES, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.fetch, self.clock = fetch, clock
        self.fresh_s, self.max_age_s, self.keep_s = fresh_s, max_age_s, keep_s
        self.max_devices = max_devices
        self._answers: dict[str, DeviceAnswer] = {}
        self._asked: dict[str, float] = {}  # device: when last asked, least recent first
        self._alone: dict[str, asyncio.Task[DeviceAnswer]] = {}
        self._refresh: asyncio.Task[None] | None = None
        self._refreshing: set[str] = set()  # the devices the running refresh fetches
        self._refreshed_from = float("-inf")  # when the last refresh started
        self.fetched = self.refreshed = self.served = 0  # alone, refreshes, from memory

    async def get(self, device: str) -> DeviceAnswer:
        """This device's answer; NotFound when it is not registered."""
        now = self.clock()
        again = self._asked.pop(device, None) is not None
        self._asked[device] = now  # to the end: the dict stays ordered by last asked
        if len(self._asked) > self.max_devices:
            self._forget(next(iter(self._asked)))
        found = self._answers.get(device)
        if (again and (found is None or now - found.at >= self.fresh_s)
                and device not in self._alone  # its first fetch still running: join that
                and self._refresh is None and now - self._refreshed_from >= self.fresh_s):
            self._start_refresh(now)
        if found is not None and now - found.at < self.max_age_s:
            self.served += 1
            return found
        if self._refresh is not None and device in self._refreshing:
            # shielded: a caller that goes away does not cancel the others' refresh
            await asyncio.shield(self._refresh)
            if (found := self._answers.get(device)) is not None:
                return found
            # not in the refresh's answer (no longer registered, or pushed out meanwhile by
            # MAX_DEVICES others): a fetch of its own says which
        task = self._alone.get(device)
        if task is None:
            task = self._alone[device] = asyncio.get_running_loop().create_task(
                self._fetch_alone(device))
            task.add_done_callback(retrieved)
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

    def _start_refresh(self, now: float) -> None:
        while self._asked and next(iter(self._asked.values())) < now - self.keep_s:
            self._forget(next(iter(self._asked)))
        self._refreshed_from, self._refreshing = now, set(self._asked)
        self._refresh = asyncio.get_running_loop().create_task(
            self._refresh_in_use(now, list(self._asked)))
        self._refresh.add_done_callback(retrieved)

    async def _refresh_in_use(self, started: float, devices: list[str]) -> None:
        try:
            got = await self.fetch(devices)
        except BaseException:
            log.debug("device answers not refreshed", exc_info=True)
            raise  # to the requests waiting for it; the next one asked again retries
        finally:
            self._refresh, self._refreshing = None, set()
        for device in devices:
            old = self._answers.get(device)
            if old is not None and old.at >= started:
                continue  # fetched alone meanwhile: that answer is the newer
            if device in got:
                if device in self._asked:  # not forgotten meanwhile
                    self._answers[device] = DeviceAnswer(started, *got[device])
            elif old is not None:
                del self._answers[device]  # no longer registered: the next request says so
        self.refreshed += 1

    def _forget(self, device: str) -> None:
        del self._asked[device]
        self._answers.pop(device, None)

