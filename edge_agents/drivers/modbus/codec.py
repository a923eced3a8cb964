"""Registers <-> values, and read planning. Pure functions: no I/O, unit-tested by table."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from cityops.errors import DecodeError
from edge_agents.drivers.modbus.config import MAX_READ_BITS, MAX_READ_REGISTERS, WordOrder

STRUCT_CODE = {
    "int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "int64": "q", "uint64": "Q",
    "float32": "f", "float64": "d",
}


def _reorder(data: bytes, order: WordOrder) -> bytes:
    """Map wire bytes to big-endian (and back: every order is its own inverse)."""
    if order is WordOrder.ABCD:
        return data
    if order is WordOrder.DCBA:
        return data[::-1]
    words = [data[i : i + 2] for i in range(0, len(data), 2)]
    if order is WordOrder.CDAB:
        return b"".join(reversed(words))
    # BADC: bytes swapped inside each word, words in order
    return b"".join(w[::-1] for w in words)


def registers_to_bytes(registers: list[int]) -> bytes:
    return struct.pack(f">{len(registers)}H", *registers)


def bytes_to_registers(data: bytes) -> list[int]:
    return list(struct.unpack(f">{len(data) // 2}H", data))


def decode_registers(
    registers: list[int], data_type: str, order: WordOrder, bit: int | None = None
) -> bool | int | float | str:
    """Registers read from the device -> the raw (unscaled) value."""
    if bit is not None:
        return bool((registers[0] >> bit) & 1)
    data = _reorder(registers_to_bytes(registers), order)
    if data_type == "string":
        return data.split(b"\x00", 1)[0].decode("utf-8", errors="replace").rstrip()
    code = STRUCT_CODE.get(data_type)
    if code is None or struct.calcsize(code) != len(data):
        raise DecodeError(f"{len(registers)} registers do not hold a {data_type}")
    # a float32 comes back as its exact double; PointBase.to_engineering shortens it
    return struct.unpack(f">{code}", data)[0]


def raw_reader(
    data_type: str, order: WordOrder, bit: int | None, count: int
) -> Callable[[bytes, int], bool | int | float | str]:
    """decode_registers made once per point: reads the value at a byte offset of a block's
    big-endian bytes (the block packed once, not each point's registers again). The common
    orders need no reordering: ABCD is the struct's big-endian, DCBA its little-endian, and a
    single register has no words to swap."""
    if bit is not None:
        return lambda data, at: bool(((data[at] << 8 | data[at + 1]) >> bit) & 1)
    size = 2 * count
    if data_type == "string":
        return lambda data, at: decode_registers(
            bytes_to_registers(data[at:at + size]), data_type, order)
    code = STRUCT_CODE.get(data_type)
    if code is None or struct.calcsize(code) != size:
        def wrong(data: bytes, at: int) -> bool | int | float | str:
            raise DecodeError(f"{count} registers do not hold a {data_type}")
        return wrong
    if order is WordOrder.ABCD or (size == 2 and order is WordOrder.CDAB):
        unpack = struct.Struct(f">{code}").unpack_from
    elif order is WordOrder.DCBA or (size == 2 and order is WordOrder.BADC):
        unpack = struct.Struct(f"<{code}").unpack_from
    else:
        whole = struct.Struct(f">{code}").unpack
        return lambda data, at: whole(_reorder(data[at:at + size], order))[0]
    return lambda data, at: unpack(data, at)[0]


def encode_value(
    value: bool | int | float | str, data_type: str, order: WordOrder, length: int | None = None
) -> list[int]:
    """A raw value -> the registers to write, in the device's byte order."""
    if data_type == "string":
        data = str(value).encode("utf-8")
        if len(data) > 2 * (length or 1):  # cut short it would be another text
            raise DecodeError(f"{len(data)} bytes of text do not fit {length or 1} registers"
                              f" ({2 * (length or 1)} bytes)")
        data = data.ljust(2 * (length or 1), b"\x00")
    else:
        code = STRUCT_CODE[data_type]
        number = float(value) if code in "fd" else int(value)
        try:
            data = struct.pack(f">{code}", number)
        except struct.error as err:
            raise DecodeError(f"{value!r} does not fit a {data_type}") from err
    return bytes_to_registers(_reorder(data, order))


@dataclass
class ReadBlock:
    """One request: `count` registers or bits of `table` from `start` on one unit."""

    table: str
    start: int
    count: int
    members: list[tuple[int, int]] = field(default_factory=list)  # (index in input, offset)


def plan_reads(
    spans: list[tuple[str, int, int]], max_gap: int = 16
) -> list[ReadBlock]:
    """Coalesce (table, start, count) spans into as few requests as the protocol allows.

    A gap between two spans is read through when it is at most `max_gap` registers: one
    round trip costs about as much as reading a few dozen extra bytes. Devices that answer
    "illegal address" inside gaps need `max_gap: 0`.
    """
    blocks: list[ReadBlock] = []
    order = sorted(range(len(spans)), key=lambda i: (spans[i][0], spans[i][1]))
    for index in order:
        table, start, count = spans[index]
        limit = MAX_READ_BITS if table in ("coil", "discrete_input") else MAX_READ_REGISTERS
        last = blocks[-1] if blocks else None
        if last is not None and last.table == table:
            end = last.start + last.count
            new_end = max(end, start + count)
            if start - end <= max_gap and new_end - last.start <= limit:
                last.count = new_end - last.start
                last.members.append((index, start - last.start))
                continue
        blocks.append(ReadBlock(table, start, count, [(index, 0)]))
    return blocks
