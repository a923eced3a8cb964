"""Number helpers shared by the point model and the drivers: pure, no I/O."""

from __future__ import annotations

import struct

FLOAT32_MAX = 3.4028234663852886e38
_pack_float32 = struct.Struct(">f").pack
FLOAT32_MIN_NORMAL = 1.1754943508222875e-38
_FORMATS = ("%.6g", "%.7g", "%.8g", "%.9g")
_SUBNORMAL_FORMATS = tuple(f"%.{digits}g" for digits in range(1, 10))


def shortest_float32(value: float) -> float:
    """The shortest decimal that is the same float32: 24.8, not 24.799999237060547 (the
    exact double of that float32). The device holds about 7 digits; more would be noise."""
    if not -FLOAT32_MAX <= value <= FLOAT32_MAX:  # also NaN and infinities
        return value
    packed = _pack_float32(value)
    # 6 digits first: when a decimal of 6 digits or fewer is the same float32, the 6-digit
    # rounding is that decimal (their spacing is over 8 times a float32's) and %g drops its
    # zeros; so the first that round-trips is the shortest, mostly at the first try.
    # 9 significant digits always round-trip a float32. Subnormals hold fewer than 6 digits.
    forms = _FORMATS if abs(value) >= FLOAT32_MIN_NORMAL or value == 0 else _SUBNORMAL_FORMATS
    for form in forms:
        candidate = float(form % value)
        # near the float32 maximum, a short decimal rounds past what a float32 holds
        if -FLOAT32_MAX <= candidate <= FLOAT32_MAX and _pack_float32(candidate) == packed:
            return candidate
    return value
