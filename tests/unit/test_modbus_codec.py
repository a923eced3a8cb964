"""Every data type in every byte order survives encode -> registers -> decode."""

import struct

import pytest

from edge_agents.drivers.modbus.codec import (
    decode_registers,
    encode_value,
    plan_reads,
    registers_to_bytes,
)
from edge_agents.drivers.modbus.config import WordOrder

VALUES = {
    "int16": -12345, "uint16": 54321, "int32": -2_000_000_001, "uint32": 4_000_000_001,
    "int64": -9_000_000_000_000_000_001, "uint64": 18_000_000_000_000_000_001,
    "float32": 230.5, "float64": -12345.678901234,
}


@pytest.mark.parametrize("order", list(WordOrder))
@pytest.mark.parametrize("data_type", sorted(VALUES))
def test_round_trip(data_type: str, order: WordOrder) -> None:
    registers = encode_value(VALUES[data_type], data_type, order)
    assert decode_registers(registers, data_type, order) == pytest.approx(VALUES[data_type])


def test_float32_orders_put_bytes_where_devices_expect_them() -> None:
    # 230.5 as float32 is 0x43 0x66 0x80 0x00 (A B C D)
    expected = {
        WordOrder.ABCD: [0x4366, 0x8000],
        WordOrder.CDAB: [0x8000, 0x4366],
        WordOrder.BADC: [0x6643, 0x0080],
        WordOrder.DCBA: [0x0080, 0x6643],
    }
    assert struct.pack(">f", 230.5) == bytes([0x43, 0x66, 0x80, 0x00])
    for order, registers in expected.items():
        assert encode_value(230.5, "float32", order) == registers, order
        assert decode_registers(registers, "float32", order) == 230.5


def test_int64_cdab_swaps_all_four_words() -> None:
    registers = encode_value(0x0102030405060708, "uint64", WordOrder.CDAB)
    assert registers == [0x0708, 0x0506, 0x0304, 0x0102]


def test_string_is_padded_and_trimmed() -> None:
    registers = encode_value("UPS-A", "string", WordOrder.ABCD, length=4)
    assert len(registers) == 4
    assert registers_to_bytes(registers) == b"UPS-A\x00\x00\x00"
    assert decode_registers(registers, "string", WordOrder.ABCD) == "UPS-A"


def test_bit_field_reads_one_bit() -> None:
    assert decode_registers([0b0100], "bool", WordOrder.ABCD, bit=2) is True
    assert decode_registers([0b0100], "bool", WordOrder.ABCD, bit=1) is False


def test_value_out_of_type_range_is_a_decode_error() -> None:
    from cityops.errors import DecodeError

    with pytest.raises(DecodeError, match="int16"):
        encode_value(40000, "int16", WordOrder.ABCD)


def test_plan_bridges_small_gaps_only() -> None:
    spans = [("input_register", 0, 2), ("input_register", 4, 2), ("input_register", 100, 2)]
    blocks = plan_reads(spans, max_gap=16)
    assert [(b.start, b.count) for b in blocks] == [(0, 6), (100, 2)]
    assert blocks[0].members == [(0, 0), (1, 4)]


def test_plan_respects_125_register_limit_and_tables() -> None:
    spans = [("holding_register", i * 2, 2) for i in range(100)] + [("coil", 0, 1)]
    blocks = plan_reads(spans, max_gap=0)
    assert all(b.count <= 125 for b in blocks)
    assert sum(len(b.members) for b in blocks) == 101
    assert {b.table for b in blocks} == {"holding_register", "coil"}
    assert len([b for b in blocks if b.table == "holding_register"]) == 2


def test_plan_with_no_gap_bridging_keeps_gapped_spans_apart() -> None:
    blocks = plan_reads([("input_register", 0, 2), ("input_register", 3, 1)], max_gap=0)
    assert len(blocks) == 2
