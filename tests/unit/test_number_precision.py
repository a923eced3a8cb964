"""Numbers keep the precision the device has: integers stay exact above 2**53, float32 values
are the short decimal the device meant, scaling adds no binary noise, and a value the data
type cannot hold is refused with the reason."""

from __future__ import annotations

import struct

import pytest

from edge_agents.commands import same_value
from edge_agents.drivers.modbus.codec import decode_registers, encode_value
from edge_agents.drivers.modbus.config import WordOrder
from edge_agents.numbers import shortest_float32
from edge_agents.profiles import parse_profile

BIG = 123456789012345678  # above 2**53: a double would make it ...680


def _point(data_type: str, **extra):
    spec = {"name": "p", "data_type": data_type, "writable": True,
            "address": {"table": "holding_register", "offset": 0}} | extra
    return parse_profile({"model": "m", "category": "power", "protocol": "modbus",
                          "points": [spec]}, "m").points[0]


@pytest.mark.parametrize("order", list(WordOrder))
def test_float32_registers_read_as_the_short_decimal(order: WordOrder) -> None:
    point = _point("float32")
    for value in (24.8, 0.1, -1234.567):
        raw = decode_registers(encode_value(value, "float32", order), "float32", order)
        assert repr(point.to_engineering(raw)) == repr(value)


def test_shortest_float32_is_the_same_float32() -> None:
    for value in (24.8, 1e-30, 123456.789, -0.001, 16777217.0, 3.4028234663852886e38,
                  1e-45, 3e-40):  # the last two subnormal: fewer than 6 digits
        as_float32 = struct.unpack(">f", struct.pack(">f", value))[0]
        short = shortest_float32(as_float32)
        assert struct.pack(">f", short) == struct.pack(">f", as_float32)
        assert len(repr(short)) <= len(repr(as_float32))
    assert shortest_float32(123456.7890625) == 123456.79
    assert shortest_float32(1.401298464324817e-45) == 1e-45


def test_int64_and_uint64_stay_exact_through_to_raw_and_the_codec() -> None:
    for data_type in ("int64", "uint64"):
        point = _point(data_type)
        raw = point.to_raw(BIG)
        assert raw == BIG and isinstance(raw, int)
        registers = encode_value(raw, data_type, WordOrder.CDAB)
        assert point.to_engineering(decode_registers(registers, data_type, WordOrder.CDAB)) == BIG


def test_scaling_is_decimal() -> None:
    tenths = _point("uint16", scale=0.1)
    assert tenths.to_engineering(3) == 0.3  # not 0.30000000000000004
    assert tenths.to_raw(0.3) == 3
    offset = _point("int16", scale=0.1, offset=-40)
    assert offset.to_engineering(615) == 21.5
    assert offset.to_raw(21.5) == 615
    tens = _point("int64", scale=10)
    assert tens.to_engineering(BIG) == BIG * 10, "an integer scale keeps an integer exact"
    assert tens.to_raw(BIG * 10) == BIG
    assert _point("float32", scale=0.1).to_engineering(248.0) == 24.8
    # a float32 from any protocol (an OPC-UA Float) is taken at float32 precision
    as_float32 = struct.unpack(">f", struct.pack(">f", 24.8))[0]
    assert _point("float32").to_engineering(as_float32) == 24.8
    assert _point("float64").to_engineering(as_float32) == as_float32


def test_values_the_type_cannot_hold_are_refused_with_the_range() -> None:
    assert _point("int16").check_write(40000) == (
        "point p: 40000 is outside what a int16 holds (-32768 to 32767)")
    assert "raw 70000" in _point("uint16", scale=0.1).check_write(7000)
    assert "outside what a uint64" in _point("uint64").check_write(2**64)
    assert _point("uint64").check_write(2**64 - 1) is None
    assert "outside what a float32" in _point("float32").check_write(1e39)
    assert "wider than 64 bits" in _point("float64").check_write(10**30)
    assert _point("float64").check_write(1e30) is None
    ranged = _point("int64", range={"min": 0, "max": 10})
    assert "above the maximum" in ranged.check_write(10**400), "no OverflowError"


def test_read_back_of_an_integer_must_be_exact() -> None:
    assert same_value(BIG, BIG, 0.5)
    assert not same_value(BIG, BIG + 2, 0.5), "a relative tolerance called these equal"
    assert same_value(215, 215, 0.05) and same_value(21.5, 21.55, 0.05)
    assert same_value(0.1, 0.1, 0.0) and not same_value(21.5, 21.7, 0.0)
