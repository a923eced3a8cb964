"""The agent's register answers (edge_agents/drivers/modbus/responses.py) decode exactly as
pymodbus' own, errors included, and pymodbus' shared tables stay as they were."""

from __future__ import annotations

import random

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu.decoders import DecodePDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
)

from edge_agents.drivers.modbus.responses import HoldingRegisters, InputRegisters


def _outcome(pdu, data: bytes):
    try:
        pdu.decode(data)
    except ModbusIOException as err:
        return "error", str(err)
    return "registers", pdu.registers


@pytest.mark.parametrize(("theirs", "ours"), [(ReadHoldingRegistersResponse, HoldingRegisters),
                                              (ReadInputRegistersResponse, InputRegisters)])
def test_lean_answers_decode_as_pymodbus_does(theirs, ours) -> None:
    rng = random.Random(21)
    for _ in range(2000):
        n = rng.randint(0, 125)
        byte_count = min(255, rng.choice([2 * n, 2 * n + 1, rng.randint(0, 255)]))
        size = rng.choice([2 * n, 2 * n + 1, 2 * n + 2, rng.randint(0, 260)])
        data = bytes([byte_count]) + rng.randbytes(size)
        assert _outcome(ours(), data) == _outcome(theirs(), data), data.hex()
    pdu = ours()
    pdu.decode(bytes([4, 0x12, 0x34, 0xAB, 0xCD]))
    assert pdu.registers == [0x1234, 0xABCD] and not pdu.isError()
    assert str(pdu).endswith("2 registers)")  # not every word of the answer


async def test_registered_on_one_client_only() -> None:
    ours = AsyncModbusTcpClient("127.0.0.1", port=1)
    other = AsyncModbusTcpClient("127.0.0.1", port=1)
    ours.register(InputRegisters)
    answer = bytes([4, 4, 0, 7, 0, 9])  # function 4, 4 bytes, registers 7 and 9
    mine, theirs = ours.ctx.framer.decoder.decode(answer), other.ctx.framer.decoder.decode(answer)
    assert type(mine) is InputRegisters and mine.registers == [7, 9]
    assert type(theirs) is ReadInputRegistersResponse and theirs.registers == [7, 9]
    assert DecodePDU.pdu_table[4][1] is ReadInputRegistersResponse
