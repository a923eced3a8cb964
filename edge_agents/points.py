"""Points, readings and profiles: a device model described as data (docs/profiles.md)."""

from __future__ import annotations

import functools
import math
import sys
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cityops.wire import ID_PATTERN, Quality, Value
from edge_agents.drivers.modbus.config import ModbusAddress
from edge_agents.drivers.mqtt.config import MqttAddress
from edge_agents.drivers.onvif.config import OnvifAddress, OnvifOperation
from edge_agents.drivers.opcua.config import OpcUaAddress, OpcUaMethodCall
from edge_agents.drivers.snmp.config import SnmpAddress, SnmpTable, TrapMapping, expand_tables
from edge_agents.numbers import shortest_float32

Name = Annotated[str, Field(pattern=ID_PATTERN)]


class DataType(StrEnum):
    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"

    @property
    def is_numeric(self) -> bool:
        return self not in (DataType.BOOL, DataType.STRING)

    @property
    def is_float(self) -> bool:
        return self in (DataType.FLOAT32, DataType.FLOAT64)


# what each numeric type can hold: a value outside is refused before anything is sent
INT_BOUNDS = {
    DataType.INT16: (-(2**15), 2**15 - 1), DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1), DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1), DataType.UINT64: (0, 2**64 - 1),
}
FLOAT_MAX = {DataType.FLOAT32: 3.4028234663852886e38, DataType.FLOAT64: sys.float_info.max}
# JSON integers the wire (orjson) carries: int64 and uint64
WIRE_INT_MIN, WIRE_INT_MAX = -(2**63), 2**64 - 1


def exact(number: float | int) -> Decimal:
    """A number as the decimal it was written as: ints exactly, floats by their shortest
    repr (0.1 is 0.1, not 0.1000000000000000055...), so scaling adds no binary noise."""
    return Decimal(number) if isinstance(number, int) else Decimal(repr(number))


_constant = functools.lru_cache(maxsize=4096)(exact)  # a profile's scales and offsets


class Simulation(BaseModel):
    """How a simulator moves this point over time (ignored by agents)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["constant", "sine", "ramp", "random_walk", "toggle"] = "sine"
    mean: float = 0.0
    amplitude: float = 1.0
    period_s: float = Field(60.0, gt=0)
    noise: float = Field(0.0, ge=0)
    minimum: float | None = None
    maximum: float | None = None


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min: float | None = None
    max: float | None = None

    def check(self, value: float | int) -> str | None:
        """Why `value` is out of range, or None when it is allowed. Compared as given:
        float(value) would round an int64 and overflow on a huge int."""
        if self.min is not None and value < self.min:
            return f"{value} is below the minimum {self.min}"
        if self.max is not None and value > self.max:
            return f"{value} is above the maximum {self.max}"
        return None


class PointBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Name
    title: str = ""
    data_type: DataType
    unit: str = ""
    scale: float = 1.0
    offset: float = 0.0
    writable: bool = False
    range: Range | None = None
    choices: dict[str, str] | None = Field(None, description="value -> label, for enumerations")
    simulate: Simulation | None = None

    def to_engineering(self, raw: float | int) -> float | int:
        """Raw device value -> engineering value (value * scale + offset), in decimal
        arithmetic: 3 x 0.1 is 0.3, not 0.30000000000000004, and an integer stays exact.
        A float32 point's raw value is taken at float32 precision (an OPC-UA Float arrives
        as 24.799999237060547, the device meant 24.8)."""
        if self.data_type is DataType.FLOAT32 and isinstance(raw, float):
            raw = shortest_float32(raw)
        if self.scale == 1.0 and self.offset == 0.0:
            return raw
        value = exact(raw) * _constant(self.scale)
        if self.offset:
            value += _constant(self.offset)
        if isinstance(raw, int) and value == value.to_integral_value():
            return int(value)
        return float(value)

    def to_raw(self, value: float | int) -> float | int:
        """Engineering value -> raw device value; an int without scaling passes untouched
        (dividing would make it a double and round anything above 2**53)."""
        if self.scale == 1.0 and self.offset == 0.0:
            raw: Decimal | float | int = value
        else:
            raw = (exact(value) - _constant(self.offset)) / _constant(self.scale)
        if self.data_type.is_float:
            return float(raw)
        return raw if isinstance(raw, int) else round(raw)

    def check_write(self, value: Value) -> str | None:
        """Why a command may not write `value` to this point, or None when it may."""
        if not self.writable:
            return f"point {self.name} is not writable"
        if self.data_type is DataType.BOOL:
            return None if isinstance(value, bool) else f"point {self.name} takes true or false"
        if self.data_type is DataType.STRING:
            return None if isinstance(value, str) else f"point {self.name} takes a string"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"point {self.name} takes a number"
        if isinstance(value, float) and not math.isfinite(value):
            return f"point {self.name} takes a number"
        if self.range is not None and (why := self.range.check(value)):
            return why
        return self._fits_type(value)

    def _fits_type(self, value: float | int) -> str | None:
        """Why the raw value would not fit the point's data type, or None."""
        try:
            raw: float | int = self.to_raw(value)
        except OverflowError:  # an int too large for a double
            raw = math.inf
        if self.data_type in INT_BOUNDS:
            low, high = INT_BOUNDS[self.data_type]
        else:
            if isinstance(value, int) and not WIRE_INT_MIN <= value <= WIRE_INT_MAX:
                return (f"point {self.name}: {value} is an integer wider than 64 bits, which "
                        "the wire does not carry; write it as a decimal number (1e30)")
            high = FLOAT_MAX[self.data_type]
            low = -high
        if low <= raw <= high:
            return None
        scaled = "" if raw == value else f" (raw {raw})"
        return (f"point {self.name}: {value}{scaled} is outside what a {self.data_type.value}"
                f" holds ({low} to {high})")


class ModbusPoint(PointBase):
    address: ModbusAddress

    @model_validator(mode="after")
    def _address_fits_type(self) -> ModbusPoint:
        self.address.check_fits(self.data_type.value, self.writable)
        return self

    def check_write(self, value: Value) -> str | None:
        why = super().check_write(value)
        if why is None and self.data_type is DataType.STRING:
            # refused before writing: cutting it to fit would store a different text
            limit = 2 * (self.address.length or 1)
            size = len(str(value).encode("utf-8"))
            if size > limit:
                return (f"point {self.name} holds at most {limit} bytes ({limit // 2}"
                        f" registers); the text is {size} bytes in UTF-8")
        return why


class OpcUaPoint(PointBase):
    address: OpcUaAddress


class MqttPoint(PointBase):
    address: MqttAddress

    @model_validator(mode="after")
    def _writable_has_command_topic(self) -> MqttPoint:
        if self.writable and self.address.command_topic is None:
            raise ValueError("a writable MQTT point needs `address.command_topic`")
        return self


class OnvifPoint(PointBase):
    address: OnvifAddress


class SnmpPoint(PointBase):
    address: SnmpAddress


class MethodArg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Name
    data_type: DataType
    range: Range | None = None


class Method(BaseModel):
    """A named action. Without `call` the agent performs `writes` in order; with `call` (OPC-UA)
    it calls the server's method and `writes` names the points the method changes, which the
    agent reads back to confirm (and the simulator applies)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Name
    title: str = ""
    args: list[MethodArg] = []
    writes: list[MethodWrite] = []
    call: OpcUaMethodCall | None = None
    onvif: OnvifOperation | None = None  # a camera operation (ONVIF profiles)

    @model_validator(mode="after")
    def _does_something(self) -> Method:
        if not self.writes and self.call is None and self.onvif is None:
            raise ValueError(f"method {self.name} needs `writes`, `call` or `onvif`")
        return self


class MethodWrite(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    point: Name
    value: Value | None = None
    arg: Name | None = Field(None, description="take the value from this argument")

    @model_validator(mode="after")
    def _one_source(self) -> MethodWrite:
        if (self.value is None) == (self.arg is None):
            raise ValueError("give exactly one of value or arg")
        return self


Method.model_rebuild()


class ProfileBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    model: Name
    title: str = ""
    vendor: str = "generic"
    category: Literal["power", "av", "security", "environment", "network"]
    methods: list[Method] = []

    @model_validator(mode="after")
    def _names_unique_and_known(self) -> ProfileBase:
        names = [p.name for p in self.points]  # type: ignore[attr-defined]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate point names: {dupes}")
        for method in self.methods:
            args = {a.name for a in method.args}
            for write in method.writes:
                if write.point not in names:
                    raise ValueError(f"method {method.name} writes unknown point {write.point}")
                if write.arg is not None and write.arg not in args:
                    raise ValueError(f"method {method.name} uses unknown argument {write.arg}")
            if method.call is not None and self.protocol != "opcua":  # type: ignore[attr-defined]
                raise ValueError(f"method {method.name}: `call` is for OPC-UA profiles only")
            if (method.onvif is not None) != (self.protocol == "onvif"):  # type: ignore[attr-defined]
                raise ValueError(f"method {method.name}: `onvif` is for ONVIF profiles, "
                                 "where every method has it")
        return self

    def point(self, name: str) -> PointBase:
        for p in self.points:  # type: ignore[attr-defined]
            if p.name == name:
                return p
        raise KeyError(name)

    def method(self, name: str) -> Method:
        for m in self.methods:
            if m.name == name:
                return m
        raise KeyError(name)


class ModbusProfile(ProfileBase):
    protocol: Literal["modbus"]
    points: list[ModbusPoint] = Field(min_length=1)


class OpcUaProfile(ProfileBase):
    protocol: Literal["opcua"]
    points: list[OpcUaPoint] = Field(min_length=1)


class MqttProfile(ProfileBase):
    protocol: Literal["mqtt"]
    points: list[MqttPoint] = Field(min_length=1)


class OnvifProfile(ProfileBase):
    protocol: Literal["onvif"]
    points: list[OnvifPoint] = Field(min_length=1)


class SnmpProfile(ProfileBase):
    """`tables` become points (one per row and column) before validation: see expand_tables."""

    protocol: Literal["snmp"]
    points: list[SnmpPoint] = Field(min_length=1)
    tables: list[SnmpTable] = []
    traps: list[TrapMapping] = []

    @model_validator(mode="after")
    def _trap_points_known(self) -> SnmpProfile:
        names = {p.name for p in self.points}
        for trap in self.traps:
            head, _, tail = trap.point.partition("{index}")
            if not any(n.startswith(head) and n.endswith(tail) for n in names):
                raise ValueError(f"trap {trap.trap} sets unknown point {trap.point}")
        return self

    @model_validator(mode="before")
    @classmethod
    def _expand_tables(cls, data: object) -> object:
        return expand_tables(data)

    @field_validator("methods")
    @classmethod
    def _no_methods(cls, methods: list[Method]) -> list[Method]:
        if methods:
            raise ValueError("SNMP profiles are read-only: no methods")
        return methods


Profile = Annotated[ModbusProfile | OpcUaProfile | MqttProfile | OnvifProfile | SnmpProfile,
                    Field(discriminator="protocol")]
# for isinstance and annotations
AnyProfile = ModbusProfile | OpcUaProfile | MqttProfile | OnvifProfile | SnmpProfile


class Reading(NamedTuple):
    """One timestamped value of one point of one device. A named tuple, immutable and
    hashable as the frozen dataclass it was, built in under half its time: an agent builds one
    per point per poll, and the dataclass's __init__ (object.__setattr__ per field) was 16 %
    of its busy time in `make bench-agent`."""

    device: str
    point: str
    ts_ms: int
    value: Value | None
    quality: Quality = Quality.GOOD
