"""The edge agent: one asyncio task per device, a recorder into the local queue, the uplink."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

import orjson

from cityops import wire
from cityops.errors import DeviceError
from edge_agents.backoff import Backoff
from edge_agents.config import DeviceConfig, LoadedAgentConfig
from edge_agents.drivers.modbus.driver import ModbusConnection, ModbusDriver
from edge_agents.points import Reading
from edge_agents.queue import LocalQueue
from edge_agents.uplink import Uplink

log = logging.getLogger(__name__)
AGENT_VERSION = "0.1.0"


def encode_readings(readings: list[Reading]) -> bytes:
    return orjson.dumps(
        [
            {"device": r.device, "point": r.point, "ts": r.ts_ms, "value": r.value,
             "quality": r.quality.value}
            for r in readings
        ]
    )


@dataclass
class Recorder:
    """Collects readings and writes them to the queue in batches."""

    queue: LocalQueue
    uplink: Uplink
    max_readings: int
    max_wait_s: float
    pending: list[Reading] = field(default_factory=list)
    _flush_now: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, readings: list[Reading]) -> None:
        self.pending.extend(readings)
        if len(self.pending) >= self.max_readings:
            self._flush_now.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_now.wait(), self.max_wait_s)
            self._flush_now.clear()
            await self.flush()

    async def flush(self) -> None:
        while self.pending:
            chunk, self.pending = (
                self.pending[: self.max_readings], self.pending[self.max_readings :]
            )
            await self.queue.append(encode_readings(chunk), len(chunk))
            self.uplink.new_data.set()


class Agent:
    def __init__(self, loaded: LoadedAgentConfig) -> None:
        self.config = loaded.config
        self.profiles = loaded.profiles
        q = self.config.queue
        self.queue = LocalQueue(q.path, q.max_bytes)
        self.uplink = Uplink(self.config, self.queue, self.status)
        self.recorder = Recorder(
            self.queue, self.uplink, q.batch_max_readings, q.batch_max_wait_ms / 1000
        )
        self.connections: dict[tuple[str, int], ModbusConnection] = {}
        self.drivers: dict[str, ModbusDriver] = {}
        self.device_state: dict[str, str] = {d.id: "unknown" for d in self.config.devices}
        self.readings_total = 0
        for device in self.config.devices:
            self.drivers[device.id] = self._driver(device)

    def _driver(self, device: DeviceConfig) -> ModbusDriver:
        key = (device.endpoint.host, device.endpoint.port)
        if key not in self.connections:
            self.connections[key] = ModbusConnection(*key, timeout_s=device.timeout_s)
        return ModbusDriver(
            device.id, self.profiles[device.id], device.endpoint, self.connections[key],
            device.max_gap,
        )

    def status(self, state: wire.GatewayState) -> wire.Status:
        return wire.Status(
            state=state,
            agent_version=AGENT_VERSION,
            devices=self.device_state if state is wire.GatewayState.ONLINE else {},
            queue_depth=self.queue.readings,
            counters={
                "readings": self.readings_total,
                "dropped_readings": self.queue.dropped_readings,
                "published_batches": self.uplink.published_batches,
            },
            ts=int(time.time() * 1000),
        )

    async def run(self) -> None:
        await self.queue.open()
        log.info("gateway %s: stream %s, %d batches queued",
                 self.config.gateway, self.queue.stream, self.queue.batches)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.uplink.run())
                tasks.create_task(self.recorder.run())
                tasks.create_task(self._status_loop())
                for device in self.config.devices:
                    tasks.create_task(self._poll_device(device))
        finally:
            await self.recorder.flush()
            for conn in self.connections.values():
                conn.close()
            await self.queue.close()

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.status_interval_s)
            await self.uplink.publish_status()

    async def _poll_device(self, device: DeviceConfig) -> None:
        driver, backoff = self.drivers[device.id], Backoff(initial_s=device.poll_interval_s)
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            try:
                readings = await driver.read()
            except DeviceError as err:
                self._mark(device.id, "offline", err)
                await asyncio.sleep(backoff.next_delay())
                next_at = loop.time()
                continue
            self._mark(device.id, "online", None)
            backoff.reset()
            self.readings_total += len(readings)
            self.recorder.add(readings)
            # fixed-rate schedule: a slow poll does not push every later poll back
            next_at += device.poll_interval_s
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if next_at < loop.time() - device.poll_interval_s:
                next_at = loop.time()

    def _mark(self, device: str, state: str, err: Exception | None) -> None:
        previous = self.device_state[device]
        if previous == state:
            return
        self.device_state[device] = state
        if state == "offline":
            log.warning("device %s unreachable: %s", device, err)
            now = int(time.time() * 1000)
            points = self.profiles[device].points
            self.recorder.add(
                [Reading(device, p.name, now, None, wire.Quality.BAD) for p in points]
            )
        elif previous == "offline":
            log.info("device %s recovered", device)
        asyncio.get_running_loop().create_task(self.uplink.publish_status())
