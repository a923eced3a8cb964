"""Register read answers as the agent's Modbus clients decode them (part of the pymodbus
adapter, connection.py; registered on the agent's own clients only, never pymodbus' tables).

pymodbus decodes a register answer with one struct.unpack per register in a Python loop and
then formats the whole answer, every register, into a debug line it builds whether or not
debug logging is on: about 20 us of CPU for a 125-register answer, some 5 % of the agent's
CPU per meter poll in `make bench-agent` (issue #21). Here: one unpack for all registers,
and a short text (what was answered, not every word). Same registers, same errors.
"""

from __future__ import annotations

import struct
from functools import lru_cache

from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
)


@lru_cache(maxsize=128)
def _words(count: int) -> struct.Struct:
    return struct.Struct(f">{count}H")


def _decode(pdu: ReadHoldingRegistersResponse, data: bytes) -> None:
    """pymodbus' decode in one call: the byte count, then byte_count // 2 big-endian words."""
    if (data_len := int(data[0])) >= len(data):
        raise ModbusIOException(
            f"byte_count {data_len} > length of packet {len(data)}",
            function_code=pdu.function_code,
        )
    count = data_len // 2
    pdu.registers = list(_words(count).unpack_from(data, 1))


def _text(pdu: ReadHoldingRegistersResponse) -> str:
    return (f"{pdu.__class__.__name__}(dev_id={pdu.dev_id}, "
            f"transaction_id={pdu.transaction_id}, {len(pdu.registers)} registers)")


class HoldingRegisters(ReadHoldingRegistersResponse):
    decode = _decode
    __str__ = _text


class InputRegisters(ReadInputRegistersResponse):
    decode = _decode
    __str__ = _text


LEAN_RESPONSES = (HoldingRegisters, InputRegisters)
