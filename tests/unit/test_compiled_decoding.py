"""The agent's per-point decoding made once (edge_agents/drivers/modbus/codec.raw_reader,
edge_agents/numbers.scaler) gives exactly what the generic path gives: decode_registers, then
PointBase.to_engineering in decimals; same values and same types, for every type and word
order, random words, and integer and float raws over many scales and offsets."""

from __future__ import annotations

import itertools
import math
import random
import struct

import pytest

from edge_agents.drivers.modbus.codec import (
    STRUCT_CODE,
    decode_registers,
    raw_reader,
    registers_to_bytes,
)
from edge_agents.drivers.modbus.config import WordOrder
from edge_agents.numbers import scaler
from edge_agents.profiles import parse_profile

SCALES = [0.1, 0.01, 0.001, 2.5, 1e-5, 10.0, 1.0, 0.5, 1 / 3, 100.0, 0.05]
OFFSETS = [0.0, -40.0, 273.15, 0.5, -0.001]


def _same(a, b) -> bool:
    both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return type(a) is type(b) and (a == b or both_nan)


@pytest.mark.parametrize("data_type", [*STRUCT_CODE, "string"])
def test_raw_reader_matches_decode_registers(data_type: str) -> None:
    rng = random.Random(data_type)
    count = 4 if data_type == "string" else struct.calcsize(STRUCT_CODE[data_type]) // 2
    for order, bit in itertools.product(WordOrder, [None, 5] if data_type == "uint16" else [None]):
        read = raw_reader(data_type, order, bit, count)
        for _ in range(300):
            words = [rng.randint(0, 65535) for _ in range(12)]
            rel = rng.randint(0, 12 - count)
            expected = decode_registers(words[rel:rel + count], data_type, order, bit)
            assert _same(read(registers_to_bytes(words), 2 * rel), expected), (order, words)


def test_a_type_that_does_not_fit_its_registers_is_a_decode_error() -> None:
    from cityops.errors import DecodeError

    with pytest.raises(DecodeError, match="3 registers do not hold a float32"):
        raw_reader("float32", WordOrder.ABCD, None, 3)(b"\x00" * 6, 0)


@pytest.mark.parametrize("data_type", ["uint16", "int32", "uint64", "float32", "float64"])
def test_scaler_matches_to_engineering(data_type: str) -> None:
    rng = random.Random(data_type)
    for scale, offset in itertools.product(SCALES, OFFSETS):
        point = parse_profile({"model": "m", "category": "power", "protocol": "modbus",
                               "points": [{"name": "p", "data_type": data_type, "scale": scale,
                                           "offset": offset, "address": {
                                               "table": "input_register", "offset": 0}}]},
                              "m").points[0]
        convert = scaler(data_type == "float32", scale, offset)
        for _ in range(200):
            if data_type.startswith("float"):
                raw = rng.choice([rng.uniform(-1e6, 1e6), float(rng.randint(-99, 99))])
            else:
                raw = rng.choice([rng.randint(0, 65535), rng.randint(-2**31, 2**31),
                                  rng.randint(0, 2**63)])
            assert _same(convert(raw), point.to_engineering(raw)), (scale, offset, raw)
