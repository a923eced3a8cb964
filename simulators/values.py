"""How simulated points move over time: the same rules for every protocol's simulator."""

from __future__ import annotations

import math
import random

from edge_agents.points import Simulation

__all__ = ["simulated_value"]


def simulated_value(sim: Simulation, t: float, previous: float | None) -> float:
    """The value a simulated point has at time t (seconds)."""
    phase = (t % sim.period_s) / sim.period_s
    if sim.kind == "constant":
        value = sim.mean
    elif sim.kind == "sine":
        value = sim.mean + sim.amplitude * math.sin(2 * math.pi * phase)
    elif sim.kind == "ramp":
        value = sim.mean + sim.amplitude * phase
    elif sim.kind == "toggle":
        value = 1.0 if phase >= 0.5 else 0.0
    else:
        start = sim.mean if previous is None else previous
        value = start + random.gauss(0, sim.amplitude * 0.05)
    if sim.noise:
        value += random.gauss(0, sim.noise)
    if sim.minimum is not None:
        value = max(sim.minimum, value)
    if sim.maximum is not None:
        value = min(sim.maximum, value)
    return value
