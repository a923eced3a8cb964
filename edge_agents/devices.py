"""One device's life in the agent: poll or subscribe, reconnect with capped backoff + jitter,
mark the device offline (its points' quality bad) while it is unreachable, log transitions
once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cityops import wire
from cityops.backoff import Backoff
from cityops.errors import DeviceError, PlatformError
from edge_agents.config import DeviceConfig
from edge_agents.driver import Driver, OnReadings
from edge_agents.points import Reading
from edge_agents.readings import ReadingBlock

log = logging.getLogger(__name__)

OnState = Callable[[str, str], None]


@dataclass
class DeviceRunner:
    config: DeviceConfig
    profile: Any
    driver: Driver
    on_readings: OnReadings
    on_state: OnState
    state: str = "unknown"
    reason: str | None = None  # why it is offline: the last error, for the status payload
    retry_in_s: float = 0.0  # the wait before the next attempt
    readings: int = 0
    failures: int = 0
    backoff: Backoff = field(default_factory=lambda: Backoff(initial_s=0.5, cap_s=30.0))
    # the last (time, value, quality) delivered per point, since the last connect
    _last: dict[str, tuple[int, Any, wire.Quality]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.config.id

    async def run(self) -> None:
        """Forever: connect, then poll or subscribe; on any failure back off and start again."""
        self.backoff.initial_s = min(self.config.poll_interval_s, 1.0)
        try:
            while True:
                try:
                    self._last.clear()  # after a reconnect every point is reported again
                    await self.driver.connect()
                    if self.driver.pushes:
                        await self.driver.subscribe(self._deliver)
                        raise DeviceError("subscription ended")
                    await self._poll()
                except DeviceError as err:
                    self._mark("offline", err)
                    self.retry_in_s = max(self.backoff.next_delay(), _retry_after(err))
                except Exception as err:  # a driver bug must not end the device's task
                    log.exception("device %s: unexpected driver error", self.id)
                    self._mark("offline", err)
                    self.retry_in_s = self.backoff.next_delay()
                await self.driver.close()
                await asyncio.sleep(self.retry_in_s)
        finally:
            await self.driver.close()

    def _deliver(self, readings: list[Reading] | ReadingBlock) -> None:
        if readings:
            self._mark("online", None)
            self.backoff.reset()
            # a block is stamped at the time of reading: never the previous one again
            fresh = readings if isinstance(readings, ReadingBlock) else self._changed(readings)
            if fresh:
                self.readings += len(fresh)
                self.on_readings(fresh)

    def _changed(self, readings: list[Reading]) -> list[Reading]:
        """Readings that are not the point's previous one again: a polled OPC-UA server answers
        the same sample (source time, value, quality) until it takes a new one, and storing it
        again only repeats a row (the field stored 1,712 rows of 8 samples)."""
        fresh = []
        for reading in readings:
            key = (reading.ts_ms, reading.value, reading.quality)
            if self._last.get(reading.point) != key:
                self._last[reading.point] = key
                fresh.append(reading)
        return fresh

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.config.poll_interval_s
        next_at = loop.time()
        while True:
            self._deliver(await self.driver.read())
            # fixed-rate schedule: a slow poll does not push every later poll back
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if next_at < loop.time() - interval:
                next_at = loop.time()

    def _mark(self, state: str, err: Exception | None) -> None:
        previous = self.state
        reason = _reason(err) if state == "offline" else None
        if previous == state:
            if reason is not None and _code(reason) != _code(self.reason):
                # still offline, for another reason (unreachable, then the password refused)
                log.warning("device %s still unreachable: %s", self.id, err)
                self.reason = reason
            return
        self.state, self.reason = state, reason
        if state == "offline":
            self.failures += 1
            log.warning("device %s unreachable: %s", self.id, err)
            now = int(time.time() * 1000)
            self.on_readings(
                [Reading(self.id, p.name, now, None, wire.Quality.BAD) for p in self.profile.points]
            )
        elif previous == "offline":
            log.info("device %s recovered", self.id)
        self.on_state(self.id, state)


def _retry_after(err: DeviceError) -> float:
    """The wait a driver asks for: credentials the device refused will not work in a second."""
    wait = err.context.get("retry_after_s", 0.0)
    return float(wait) if isinstance(wait, int | float) else 0.0


def _reason(err: Exception | None) -> str:
    if isinstance(err, PlatformError):
        return f"{err.code}: {err.detail}"[:300]
    return f"{type(err).__name__}: {err}"[:300]


def _code(reason: str | None) -> str | None:
    return reason.split(":", 1)[0] if reason else None
