"""Counters turned into rates between polls: pure arithmetic, no I/O.

SNMP counters only grow and wrap at their width (Counter32 at 2**32, Counter64 at 2**64); a
value below the previous one is a wrap when the counter is 32 bits and the wrap covers less
than half its range (more is a counter cleared: a 32-bit counter wrapping twice between two
polls cannot be told apart anyway, which is why the HC counters exist). An agent restart (or a
counter reset) also makes values fall: the driver sees sysUpTime go back and calls
`restart()`, so the next poll starts a new baseline instead of reporting a wrap of almost 2**32
octets (at 10 s polls that would be a 3.4 Gbit/s spike on an idle port). A Counter64 that
falls without a restart is a counter that went backwards (cleared by an operator, a broken
agent): the rate for that poll is refused with a reason, and the next poll starts again.
"""

from __future__ import annotations

from dataclasses import dataclass

MODULUS = {"counter32": 2**32, "counter64": 2**64}


@dataclass(frozen=True, slots=True)
class Rate:
    """A rate per second, or why there is none this poll (`value` None)."""

    value: float | None
    why: str = ""


class CounterRates:
    """The previous sample of each counter point, to compute the next rate from."""

    def __init__(self, min_window_s: float = 0.0) -> None:
        self._last: dict[str, tuple[int, str, float]] = {}  # point -> (value, kind, time_s)
        # a rate over a few milliseconds (the read right after connect's baseline, a late
        # poll catching up) multiplies one counter update into a spike: such a sample is
        # skipped and the older baseline kept, so the next window is long enough
        self.min_window_s = min_window_s

    def restart(self) -> None:
        """The agent restarted: every counter starts from a new baseline."""
        self._last.clear()

    def update(self, point: str, value: int, kind: str, time_s: float) -> Rate:
        """The rate since the previous sample of `point`, per second of `time_s`."""
        if kind not in MODULUS:
            self._last.pop(point, None)
            return Rate(None, f"not a counter ({kind})")
        previous = self._last.get(point)
        if previous is not None and previous[1] == kind \
                and 0 < time_s - previous[2] < self.min_window_s:
            return Rate(None, "too soon after the previous sample")
        self._last[point] = (value, kind, time_s)
        if previous is None:
            return Rate(None, "first sample")
        last_value, last_kind, last_time = previous
        if last_kind != kind:  # the agent answered the 32-bit fallback this time, or back
            return Rate(None, f"counter changed from {last_kind} to {kind}")
        elapsed = time_s - last_time
        if elapsed <= 0:
            return Rate(None, "no time passed since the previous sample")
        delta = value - last_value
        if delta < 0:
            # a wrap covers what was left below 2**32 plus the new value: more than half the
            # range in one poll is a counter cleared (or a lost agent), not a wrap
            if kind != "counter32" or delta + MODULUS[kind] > MODULUS[kind] // 2:
                return Rate(None, f"counter went backwards ({last_value} to {value}) without "
                                  "an agent restart")  # this sample is the next baseline
            delta += MODULUS[kind]  # wrapped once
        return Rate(delta / elapsed)


def uptime_went_back(previous_ticks: int | None, ticks: int) -> bool:
    """sysUpTime (hundredths of a second) lower than at the previous poll: the agent restarted
    (or its uptime wrapped after 497 days, which a new baseline also handles)."""
    return previous_ticks is not None and ticks < previous_ticks
