"""Modbus TCP driver: one device (unit id) read and written through a shared connection
(connection.py, where the pymodbus client lives). Polls read as few blocks as Modbus allows
and decode each block together (block.py)."""

from __future__ import annotations

import asyncio
import logging
import math
import struct
import time
from dataclasses import dataclass

from cityops.errors import DecodeError, DeviceRejected, DeviceUnreachable
from cityops.wire import Quality, Value
from edge_agents.driver import OnReadings, method_values
from edge_agents.drivers.modbus.block import BlockDecoder, ValueOf
from edge_agents.drivers.modbus.codec import (
    ReadBlock,
    encode_value,
    plan_reads,
    raw_reader,
    registers_to_bytes,
)
from edge_agents.drivers.modbus.config import ModbusEndpoint
from edge_agents.drivers.modbus.connection import ModbusConnection
from edge_agents.numbers import scaler
from edge_agents.points import Method, ModbusPoint, ModbusProfile
from edge_agents.readings import Layout, ReadingBlock

__all__ = ["ModbusConnection", "ModbusDriver"]  # the connection lives in connection.py

log = logging.getLogger(__name__)

# exceptions about the request itself (this table, these addresses, this count): only the
# points it asked for are refused; others (busy, device failure, gateway) are the device's
BLOCK_REFUSALS = {1, 2, 3}
REJOIN_AFTER_S = 600.0  # points set apart are read together again after this long all well
_READ_CALLS = {
    "coil": "read_coils", "discrete_input": "read_discrete_inputs",
    "holding_register": "read_holding_registers", "input_register": "read_input_registers",
}


@dataclass
class ModbusDriver:
    """Reads and writes one device (one unit id) through a shared connection."""

    device: str
    profile: ModbusProfile
    endpoint: ModbusEndpoint
    connection: ModbusConnection
    max_gap: int = 16

    def __post_init__(self) -> None:
        self._spans = [
            (p.address.table, p.address.offset, p.address.register_count(p.data_type))
            for p in self.profile.points
        ]
        self._alone: set[int] = set()  # points read one per request: their block was refused
        self._refused: set[str] = set()  # points the device refuses now (logged once)
        self._split_at = 0.0  # when points were last set apart
        self._poll_deadline: asyncio.Timeout | None = None  # the poll in progress
        self._value_of = {p.name: self._decoding(p) for p in self.profile.points}
        self._plan = self._make_plan()

    def _make_plan(self) -> list[tuple[ReadBlock, BlockDecoder, Layout]]:
        together = [i for i in range(len(self._spans)) if i not in self._alone]
        plan = plan_reads([self._spans[i] for i in together], self.max_gap)
        for block in plan:
            block.members = [(together[i], rel) for i, rel in block.members]
        plan += [ReadBlock(*self._spans[i], [(i, 0)]) for i in sorted(self._alone)]
        return [self._compiled(block) for block in plan]

    def _compiled(self, block: ReadBlock) -> tuple[ReadBlock, BlockDecoder, Layout]:
        points = self.profile.points
        decoder = BlockDecoder([(points[i], rel) for i, rel in block.members],
                               lambda point: self._value_of[point.name])
        return block, decoder, Layout(self.device, decoder.names)

    @property
    def request_count_per_poll(self) -> int:
        return len(self._plan)

    @property
    def pushes(self) -> bool:
        return False

    async def connect(self) -> None:
        # connections open on demand and are shared: nothing to do per device
        return None

    async def close(self) -> None:
        # the shared connection is closed by its factory; a later request reopens it
        return None

    async def subscribe(self, on_readings: OnReadings) -> None:
        raise NotImplementedError("Modbus devices are polled")

    async def read(self) -> ReadingBlock:
        """Read every point; a point whose bytes do not decode comes back with quality bad.
        One deadline for the whole poll, its requests' backstops end to end: a timer per
        request on top of pymodbus' own was about 6 us each of the agent's CPU (issue #21)."""
        connection = self.connection
        async with connection.exclusive(deadline_held=True):
            try:
                async with asyncio.timeout(connection.backstop_s * len(self._plan)) as poll:
                    self._poll_deadline = poll
                    return await self._read_all()
            except TimeoutError as err:  # the requests' cancel closed the connection
                raise DeviceUnreachable(f"poll of {self.device} on {connection.host}:"
                                        f"{connection.port} did not end in time") from err
            finally:
                self._poll_deadline = None

    async def _read_all(self) -> ReadingBlock:
        readings = ReadingBlock(self.device)
        for compiled in list(self._plan):
            await self._read_block(*compiled, readings)
        if self._alone and not self._refused and \
                time.monotonic() - self._split_at > REJOIN_AFTER_S:
            # every address answers again (a firmware update): back to the fewest requests
            self._alone.clear()
            self._plan = self._make_plan()
        return readings

    async def _read_block(self, block: ReadBlock, decoder: BlockDecoder, layout: Layout,
                          readings: ReadingBlock) -> None:
        try:
            response = await self.connection.call(
                _READ_CALLS[block.table], self.endpoint.unit_id, block.start, count=block.count
            )
        except DeviceRejected as err:
            if err.context.get("exception_code") not in BLOCK_REFUSALS:
                raise  # busy, failing: the device's trouble, not these addresses'
            if len(block.members) == 1:
                self._refused_point(block.members[0][0], err, readings)
                return
            # which of the points does it refuse? ask for each alone, now and from now on
            self._alone.update(index for index, _ in block.members)
            self._plan, self._split_at = self._make_plan(), time.monotonic()
            self._extend_deadline(len(block.members))
            for index, _ in block.members:
                alone = self._compiled(ReadBlock(*self._spans[index], [(index, 0)]))
                await self._read_block(*alone, readings)
            return
        ts = int(time.time() * 1000)
        if self._refused:
            self._read_again(block)
        bits = block.table in ("coil", "discrete_input")
        values, qualities = decoder.decode(response.bits if bits else response.registers)
        readings.add(layout, ts, values, qualities)

    def _extend_deadline(self, requests: int) -> None:
        poll = self._poll_deadline
        when = poll.when() if poll is not None else None
        if poll is not None and when is not None:
            poll.reschedule(when + self.connection.backstop_s * requests)

    def _read_again(self, block: ReadBlock) -> None:
        points = self.profile.points
        for index, _ in block.members:
            if points[index].name in self._refused:
                self._refused.discard(points[index].name)
                log.info("device %s: point %s is read again", self.device, points[index].name)

    def _refused_point(self, index: int, err: DeviceRejected, readings: ReadingBlock) -> None:
        """A point whose address the device refuses: bad, the rest of the device reads on."""
        point = self.profile.points[index]
        if point.name not in self._refused:
            self._refused.add(point.name)
            table, start, count = self._spans[index]
            log.warning("device %s: point %s (%s %d, %d registers) refused: %s; reported bad",
                        self.device, point.name, table, start, count, err.detail)
        readings.add(Layout(self.device, [point.name]), int(time.time() * 1000), [None],
                     [Quality.BAD])

    @property
    def refused_points(self) -> frozenset[str]:
        return frozenset(self._refused)

    def _decoding(self, point: ModbusPoint) -> ValueOf:
        """The point's own decoding, made once: (block data, byte offset) -> (value, quality).
        Blocks decode their numeric points together (block.py); this serves the others and
        read-backs."""
        device, name, address = self.device, point.name, point.address
        if address.is_bit_table:
            def raw_of(data: bytes | list, at: int) -> Value:
                return bool(data[at])
        else:
            raw_of = raw_reader(point.data_type, address.order, address.bit,
                                address.register_count(point.data_type))
        scaled = point.data_type not in ("bool", "string") and address.bit is None \
            and not address.is_bit_table
        convert = scaler(point.data_type == "float32", point.scale, point.offset)
        isfinite = math.isfinite

        def value_of(data: bytes | list, at: int) -> tuple[Value | None, Quality]:
            try:
                raw = raw_of(data, at)
            except (DecodeError, struct.error, IndexError) as err:
                log.warning("device %s point %s: %s", device, name, err)
                return None, Quality.BAD
            if not scaled:
                return raw, Quality.GOOD
            if raw.__class__ is float and not isfinite(raw):
                return None, Quality.BAD  # NaN: no value
            return convert(raw), Quality.GOOD

        return value_of

    async def write(self, point_name: str, value: Value) -> Value:
        """Write one point and return the value read back from the device."""
        async with self.connection.exclusive():
            return await self._write(point_name, value)

    async def call(self, method: Method, args: dict[str, Value]) -> Value | None:
        """A method's writes in order, all between two polls; returns the last read-back."""
        readback: Value | None = None
        async with self.connection.exclusive():
            for point, value in method_values(method, args):
                readback = await self._write(point, value)
        return readback

    async def _write(self, point_name: str, value: Value) -> Value:
        point = self.profile.point(point_name)
        assert isinstance(point, ModbusPoint)
        try:
            return await self._write_point(point, value)
        except DeviceRejected as err:  # name what the device refused, not just the request
            where = f"{point.address.table} {point.address.offset}"
            raise DeviceRejected(f"point {point.name} ({where}): {err.detail}",
                                 **err.context) from err

    async def _write_point(self, point: ModbusPoint, value: Value) -> Value:
        address, unit = point.address, self.endpoint.unit_id
        if address.table == "coil":
            await self.connection.call("write_coil", unit, address.offset, bool(value))
        elif address.bit is not None:
            await self._write_bit(point, bool(value))
        else:
            raw = value if isinstance(value, str) else point.to_raw(value)
            registers = encode_value(raw, point.data_type, address.order, address.length)
            await self.connection.call("write_registers", unit, address.offset, registers)
        return await self.read_point(point)

    async def _write_bit(self, point: ModbusPoint, on: bool) -> None:
        # read-modify-write of the one register; the connection lock keeps it atomic for us
        address, unit = point.address, self.endpoint.unit_id
        response = await self.connection.call("read_holding_registers", unit, address.offset)
        word = response.registers[0]
        word = word | (1 << address.bit) if on else word & ~(1 << address.bit)  # type: ignore[operator]
        await self.connection.call("write_registers", unit, address.offset, [word])

    async def read_point(self, point: ModbusPoint) -> Value:
        count = point.address.register_count(point.data_type)
        response = await self.connection.call(
            _READ_CALLS[point.address.table], self.endpoint.unit_id, point.address.offset,
            count=count,
        )
        data = response.bits if point.address.is_bit_table else \
            registers_to_bytes(response.registers)
        value, quality = self._value_of[point.name](data, 0)
        if quality is Quality.BAD:
            raise DecodeError(f"read-back of {point.name} did not decode")
        return value  # type: ignore[return-value]

