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
from cityops.errors import DeviceError
from edge_agents.backoff import Backoff
from edge_agents.config import DeviceConfig
from edge_agents.driver import Driver, OnReadings
from edge_agents.points import Reading

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
    readings: int = 0
    failures: int = 0
    backoff: Backoff = field(default_factory=lambda: Backoff(initial_s=0.5, cap_s=30.0))

    @property
    def id(self) -> str:
        return self.config.id

    async def run(self) -> None:
        """Forever: connect, then poll or subscribe; on any failure back off and start again."""
        self.backoff.initial_s = min(self.config.poll_interval_s, 1.0)
        try:
            while True:
                try:
                    await self.driver.connect()
                    if self.driver.pushes:
                        await self.driver.subscribe(self._deliver)
                        raise DeviceError("subscription ended")
                    await self._poll()
                except DeviceError as err:
                    self._mark("offline", err)
                except Exception as err:  # a driver bug must not end the device's task
                    log.exception("device %s: unexpected driver error", self.id)
                    self._mark("offline", err)
                await self.driver.close()
                await asyncio.sleep(self.backoff.next_delay())
        finally:
            await self.driver.close()

    def _deliver(self, readings: list[Reading]) -> None:
        if readings:
            self._mark("online", None)
            self.backoff.reset()
            self.readings += len(readings)
            self.on_readings(readings)

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
        if previous == state:
            return
        self.state = state
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
