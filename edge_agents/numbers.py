"""Number helpers shared by the point model and the drivers: pure, no I/O."""

from __future__ import annotations

import struct
from collections.abc import Callable
from decimal import Decimal

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


def _decimals(number: float) -> int:
    """Digits after the point of a number as written: 0.1 -> 1, 273.15 -> 2, 10 -> 0."""
    exponent = Decimal(repr(number)).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def scaler(float32: bool, scale: float, offset: float) -> Callable[[float | int], float | int]:
    """raw -> raw * scale + offset, as PointBase.to_engineering computes it in decimals (3 x
    0.1 is 0.3; an integral result of an integer raw is an int), made once per point.

    An agent converts every reading: the decimal arithmetic cost about 2 us a reading, most of
    a poll's CPU. For an integer raw the exact result has at most `digits` decimals, and the
    binary product is within a few ulps of it, so rounding it to `digits` places gives that
    decimal's nearest double: the same float Decimal gives, while the value stays below
    `bound` (rounding error under half a unit of the last place). Float raws and larger values
    take the decimal path."""
    def shorten(raw: float | int) -> float | int:
        return shortest_float32(raw) if float32 and isinstance(raw, float) else raw

    if scale == 1.0 and offset == 0.0:
        return shorten if float32 else _same
    exact_scale, exact_offset = Decimal(repr(scale)), Decimal(repr(offset))
    digits = max(_decimals(scale), _decimals(offset))
    bound = 1e14 / 10 ** digits

    def slow(raw: float | int) -> float | int:
        value = (Decimal(raw) if isinstance(raw, int) else Decimal(repr(raw))) * exact_scale
        if offset:
            value += exact_offset
        if isinstance(raw, int) and value == value.to_integral_value():
            return int(value)
        return float(value)

    def convert(raw: float | int) -> float | int:
        if isinstance(raw, int) and digits <= 12:
            value = round(raw * scale + offset, digits)
            if -bound < value < bound:
                return int(value) if value.is_integer() else value
        return slow(shorten(raw))

    return convert


def _same(raw: float | int) -> float | int:
    return raw
