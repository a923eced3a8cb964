"""Modbus addressing as validated data: where a point lives and how its bytes are ordered."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# registers a data type occupies; bool in a register table needs `bit`, string needs `length`
REGISTER_COUNT = {
    "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2,
    "int64": 4, "uint64": 4, "float64": 4,
}
BIT_TABLES = {"coil", "discrete_input"}
WRITABLE_TABLES = {"coil", "holding_register"}
MAX_READ_REGISTERS = 125
MAX_READ_BITS = 2000


class WordOrder(StrEnum):
    """Byte order of a multi-register value, named after where bytes A (most significant) to D
    land on the wire: ABCD is plain big-endian, DCBA little-endian, CDAB swaps 16-bit words
    (common on meters), BADC swaps the bytes inside each word."""

    ABCD = "ABCD"
    BADC = "BADC"
    CDAB = "CDAB"
    DCBA = "DCBA"


class ModbusAddress(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    table: Literal["coil", "discrete_input", "input_register", "holding_register"]
    offset: int = Field(ge=0, le=65535, description="0-based register or bit number")
    order: WordOrder = WordOrder.ABCD
    bit: int | None = Field(None, ge=0, le=15, description="a bit field inside one register")
    length: int | None = Field(None, ge=1, le=MAX_READ_REGISTERS, description="string registers")

    @property
    def is_bit_table(self) -> bool:
        return self.table in BIT_TABLES

    def register_count(self, data_type: str) -> int:
        if self.is_bit_table or self.bit is not None:
            return 1
        if data_type == "string":
            return self.length or 1
        return REGISTER_COUNT[data_type]

    def check_fits(self, data_type: str, writable: bool) -> None:
        """Refuse combinations that cannot be read or written correctly."""
        if self.is_bit_table and data_type != "bool":
            raise ValueError(f"a {self.table} holds a bool, not {data_type}")
        if not self.is_bit_table and data_type == "bool" and self.bit is None:
            raise ValueError("a bool in a register table needs `bit`")
        if self.bit is not None and data_type not in ("bool", "uint16", "int16"):
            raise ValueError("`bit` applies to bool points only")
        if (data_type == "string") != (self.length is not None):
            raise ValueError("`length` is required for string points and only for them")
        if writable and self.table not in WRITABLE_TABLES:
            raise ValueError(f"a {self.table} cannot be written")
        if self.offset + self.register_count(data_type) > 65536:
            raise ValueError("the value runs past register 65535")


class ModbusEndpoint(BaseModel):
    """Where one device answers: several unit ids may share one host:port connection."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    protocol: Literal["modbus"] = "modbus"
    host: str
    port: int = Field(502, ge=1, le=65535)
    unit_id: int = Field(1, ge=0, le=255)
