"""A Modbus TCP device simulator driven by a profile: pymodbus' server, our own register store.

We implement pymodbus' server-context interface (async_getValues/async_setValues) over plain
lists, so a write lands exactly where a real device would put it and points listed with
`simulate:` move over time. Unit ids 1..count each serve one copy of the profile.
"""

from __future__ import annotations

import asyncio
import logging
import time

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer

from edge_agents.drivers.modbus.codec import encode_value
from edge_agents.points import ModbusPoint, ModbusProfile
from simulators.values import simulated_value

log = logging.getLogger(__name__)

TABLE_OF_FUNCTION = {1: "coil", 5: "coil", 15: "coil", 2: "discrete_input", 4: "input_register"}
TABLE_OF_FUNCTION.update({fc: "holding_register" for fc in (3, 6, 16, 22, 23)})
TABLE_SIZE = 65536


class UnitStore:
    """The four Modbus tables of one simulated unit."""

    def __init__(self, profile: ModbusProfile) -> None:
        self.profile = profile
        self.tables: dict[str, list[int]] = {
            t: [0] * TABLE_SIZE
            for t in ("coil", "discrete_input", "input_register", "holding_register")
        }
        self._last: dict[str, float] = {}
        self.set_initial()

    def set_initial(self) -> None:
        for point in self.profile.points:
            if point.simulate is not None:
                self.put(point, simulated_value(point.simulate, time.time(), None))

    def tick(self, t: float) -> None:
        for point in self.profile.points:
            # a written point keeps what the client wrote, as a real device would
            if point.simulate is not None and not point.writable:
                self.put(point, simulated_value(point.simulate, t, self._last.get(point.name)))

    def put(self, point: ModbusPoint, value: float) -> None:
        """Store an engineering value the way the device's register map holds it."""
        self._last[point.name] = value
        address, table = point.address, self.tables[point.address.table]
        if address.is_bit_table:
            table[address.offset] = int(value >= 0.5)
            return
        if address.bit is not None:
            word = table[address.offset]
            mask = 1 << address.bit
            table[address.offset] = word | mask if value >= 0.5 else word & ~mask
            return
        raw = point.to_raw(value)
        registers = encode_value(raw, point.data_type, address.order, address.length)
        table[address.offset : address.offset + len(registers)] = registers


class SimulatorContext(ModbusServerContext):
    """pymodbus calls these two coroutines for every request."""

    def __init__(self, units: dict[int, UnitStore]) -> None:  # no super(): we replace its store
        self.units = units
        self.old_simulator = True
        self.simdevices: list = []
        self.delay_s = 0.0
        # what a one-request-at-a-time device would notice: overlapping requests, and the
        # order requests came in (function code, address), kept when `record` is set
        self.active = 0
        self.max_active = 0
        self.record = False
        self.requests: list[tuple[int, int]] = []
        # (function code, address) -> the exception a faulty device answers with
        self.exceptions: dict[tuple[int, int], ExcCodes] = {}
        # table -> addresses this device model lacks: a request touching one is refused with
        # "illegal data address", as real devices do
        self.missing: dict[str, set[int]] = {}
        # (function code, address) -> seconds the next such request waits (once): a late answer
        self.late: dict[tuple[int, int], float] = {}

    async def _serve(self, func_code: int, address: int, work, count: int = 1):
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        if self.record:
            self.requests.append((func_code, address))
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if (late := self.late.pop((func_code, address), None)) is not None:
                await asyncio.sleep(late)
            if (func_code, address) in self.exceptions:
                return self.exceptions[(func_code, address)]
            missing = self.missing.get(TABLE_OF_FUNCTION[func_code], ())
            if any(a in missing for a in range(address, address + count)):
                return ExcCodes.ILLEGAL_ADDRESS
            return work()
        finally:
            self.active -= 1

    def _unit(self, device_id: int) -> UnitStore:
        if device_id not in self.units:
            raise NoSuchIdException(f"unit {device_id} does not exist")
        return self.units[device_id]

    async def async_getValues(self, device_id, func_code, address, count=1):
        unit = self._unit(device_id)
        table = unit.tables[TABLE_OF_FUNCTION[func_code]]

        def read():
            if address + count > TABLE_SIZE:
                return ExcCodes.ILLEGAL_ADDRESS
            values = table[address : address + count]
            return [bool(v) for v in values] if func_code in (1, 2, 5, 15) else values

        return await self._serve(func_code, address, read, count)

    async def async_setValues(self, device_id, func_code, address, values):
        unit = self._unit(device_id)
        table = unit.tables[TABLE_OF_FUNCTION[func_code]]

        def write():
            if address + len(values) > TABLE_SIZE:
                return ExcCodes.ILLEGAL_ADDRESS
            table[address : address + len(values)] = [int(v) for v in values]
            return None

        return await self._serve(func_code, address, write, len(values))

    def device_ids(self) -> list[int]:
        return list(self.units)


async def serve(
    profile: ModbusProfile, host: str, port: int, count: int = 1, tick_s: float = 0.5,
    context: SimulatorContext | None = None,
) -> None:
    """Serve `count` units of the profile until cancelled; values move every tick_s.
    Pass `context` (see make_context) to watch or slow the device from a test."""
    context = context or make_context(profile, count)
    units = context.units
    server = ModbusTcpServer(context, address=(host, port))
    ticker = asyncio.create_task(_tick_forever(units, tick_s))
    log.info("simulating %d x %s on %s:%d", count, profile.model, host, port)
    try:
        await server.serve_forever()
    finally:
        ticker.cancel()
        await server.shutdown()


def make_context(profile: ModbusProfile, count: int = 1) -> SimulatorContext:
    return SimulatorContext({unit_id: UnitStore(profile) for unit_id in range(1, count + 1)})


async def _tick_forever(units: dict[int, UnitStore], tick_s: float) -> None:
    while True:
        now = time.time()
        for unit in units.values():
            unit.tick(now)
        await asyncio.sleep(tick_s)
