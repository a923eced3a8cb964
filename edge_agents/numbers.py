"""Number helpers shared by the point model and the drivers: pure, no I/O."""

from __future__ import annotations

import math
import struct

FLOAT32_MAX = 3.4028234663852886e38


def shortest_float32(value: float) -> float:
    """The shortest decimal that is the same float32: 24.8, not 24.799999237060547 (the
    exact double of that float32). The device holds about 7 digits; more would be noise."""
    if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
        return value
    packed = struct.pack(">f", value)
    for digits in range(1, 10):  # 9 significant digits always round-trip a float32
        candidate = float(f"{value:.{digits}g}")
        # near the float32 maximum, a short decimal rounds past what a float32 holds
        if abs(candidate) <= FLOAT32_MAX and struct.pack(">f", candidate) == packed:
            return candidate
    return value
