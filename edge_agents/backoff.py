"""Capped exponential backoff with jitter, so a fleet of agents does not reconnect in step."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    initial_s: float = 0.5
    cap_s: float = 30.0
    attempt: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap_s, self.initial_s * (2**self.attempt))
        self.attempt += 1
        # "equal jitter": never shorter than half the step, so a dead peer is not hammered
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311

    def reset(self) -> None:
        self.attempt = 0
