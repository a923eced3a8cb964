"""Capped exponential backoff, with jitter so a fleet of agents does not reconnect in step.

The cap is a few seconds, not half a minute: with a 30 s cap an agent kept dropping readings
for 26 s after its broker was back, and services waited as long for their database. Against
a peer whose port is closed, `wait_for_port` shortens the wait further: it returns as soon as
the port accepts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass

PROBE_EVERY_S = 0.25


@dataclass
class Backoff:
    initial_s: float = 0.5
    cap_s: float = 5.0
    attempt: int = 0
    # off for the platform's own few workers waiting for a new database primary
    # (cityops/reconnect.py): nothing to spread out, and their waits stay predictable
    jitter: bool = True

    def next_delay(self) -> float:
        ceiling = min(self.cap_s, self.initial_s * (2**self.attempt))
        self.attempt += 1
        if not self.jitter:
            return ceiling
        # "equal jitter": never shorter than half the step, so a dead peer is not hammered
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311

    def reset(self) -> None:
        self.attempt = 0

    async def pause(self, stop: asyncio.Event | None = None) -> None:
        """Wait the next delay, or less if `stop` is set meanwhile."""
        delay_s = self.next_delay()
        if stop is None:
            await asyncio.sleep(delay_s)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay_s)


async def port_accepts(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """Whether a TCP connection to host:port is accepted (closed again at once)."""
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError):
        return False
    # a port in the ephemeral range with no listener can "accept" a connection to itself
    # (Linux picks that very port as the source): nobody is there
    accepted = writer.get_extra_info("sockname") != writer.get_extra_info("peername")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return accepted


async def wait_for_port(host: str, port: int, delay_s: float) -> None:
    """Wait `delay_s`; but if the port is closed now, return as soon as it accepts again.

    A port that is open (the peer refused us for another reason) gets the whole delay, so a
    refusing broker is not hammered. Probes are jittered so a fleet does not come back in step.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + delay_s
    if await port_accepts(host, port):
        await asyncio.sleep(max(0.0, deadline - loop.time()))
        return
    while loop.time() < deadline:
        step = PROBE_EVERY_S * random.uniform(0.5, 1.5)  # noqa: S311
        await asyncio.sleep(min(step, max(0.0, deadline - loop.time())))
        if await port_accepts(host, port):
            return
