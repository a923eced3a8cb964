"""The edge agent: one asyncio task per device, a recorder into the local queue, the uplink,
commands from the broker, and the device list from the YAML or the retained config topic."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from cityops import wire
from cityops.errors import ConfigError
from cityops.running import cancel_until_done
from edge_agents.commands import CommandExecutor
from edge_agents.config import DeviceConfig, LoadedAgentConfig
from edge_agents.devices import DeviceRunner
from edge_agents.driver import Driver, DriverFactory
from edge_agents.metrics import MetricsServer
from edge_agents.points import Reading
from edge_agents.queue import LocalQueue
from edge_agents.readings import ReadingBlock, encode_batch, encode_grouped
from edge_agents.remote_config import parse_remote_config
from edge_agents.uplink import Uplink

log = logging.getLogger(__name__)
AGENT_VERSION = "0.1.0"


def encode_readings(readings: Sequence[Reading]) -> bytes:
    return encode_batch([readings])


@dataclass
class Recorder:
    """Collects readings and writes them to the queue in batches of at most max_readings;
    a device's poll (a ReadingBlock) is split only when it alone is larger."""

    queue: LocalQueue
    uplink: Uplink
    max_readings: int
    max_wait_s: float
    grouped: bool = True  # blocks as `groups` on the wire (issue #21), else all as `readings`
    pending: list[ReadingBlock | Sequence[Reading]] = field(default_factory=list)
    pending_count: int = 0
    _flush_now: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, readings: ReadingBlock | Sequence[Reading]) -> None:
        self.pending.append(readings)
        self.pending_count += len(readings)
        if self.pending_count >= self.max_readings:
            self._flush_now.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_now.wait(), self.max_wait_s)
            self._flush_now.clear()
            await self.flush()

    async def flush(self) -> None:
        while self.pending:
            chunk, count = self._next_chunk()
            encode = encode_grouped if self.grouped else encode_batch
            await self.queue.append(encode(chunk), count)
            self.uplink.new_data.set()

    def _next_chunk(self) -> tuple[list[ReadingBlock | Sequence[Reading]], int]:
        """Whole items from the front of pending, up to max_readings together."""
        limit, chunk, count = self.max_readings, [], 0
        while self.pending:
            item = self.pending[0]
            if count + len(item) > limit:
                if count:
                    break  # the next batch starts with it
                head, rest = _split(item, limit)
                self.pending[0] = rest
                self.pending_count -= len(head)
                return [head], len(head)
            chunk.append(self.pending.pop(0))
            count += len(item)
        self.pending_count -= count
        return chunk, count


def _split(item: ReadingBlock | Sequence[Reading], limit: int
           ) -> tuple[ReadingBlock | Sequence[Reading], ReadingBlock | Sequence[Reading]]:
    if isinstance(item, ReadingBlock):
        parts = item.split(limit)
        rest = ReadingBlock(item.device)
        for part in parts[1:]:
            for layout, ts, values, qualities in part.parts:
                rest.add(layout, ts, values, qualities)
        return parts[0], rest
    return item[:limit], item[limit:]


class Agent:
    def __init__(self, loaded: LoadedAgentConfig) -> None:
        self.config = loaded.config
        self.profiles = dict(loaded.profiles)
        q = self.config.queue
        self.queue = LocalQueue(q.path, q.max_bytes)
        self.uplink = Uplink(self.config, self.queue, self.status,
                             on_message=self._on_message, on_connected=self._on_connected)
        self.recorder = Recorder(
            self.queue, self.uplink, q.batch_max_readings, q.batch_max_wait_ms / 1000,
            grouped=self.config.telemetry_form == "grouped",
        )
        self.factory = DriverFactory(self.config.gateway, q.path.parent)
        self.runners: dict[str, DeviceRunner] = {}
        self._device_tasks: dict[str, asyncio.Task] = {}
        self.commands = CommandExecutor(self.queue, self._driver_of, self.uplink.publish_result)
        # None: devices come from the YAML; else the version taken from the config topic
        self.config_version: int | None = None
        self._configs: asyncio.Queue[bytes] = asyncio.Queue()
        self.readings_total = 0
        self.metrics: MetricsServer | None = None
        if self.config.metrics_port is not None:
            self.metrics = MetricsServer(self, self.config.metrics_host, self.config.metrics_port)

    @property
    def device_state(self) -> dict[str, str]:
        return {device: runner.state for device, runner in self.runners.items()}

    def _driver_of(self, device: str) -> Driver | None:
        runner = self.runners.get(device)
        return runner.driver if runner is not None else None

    def status(self, state: wire.GatewayState) -> wire.Status:
        counters = {
            "readings": self.readings_total,
            "dropped_readings": self.queue.dropped_readings,
            "published_batches": self.uplink.published_batches,
            "committed_batches": self.uplink.committed_batches,
            **{f"commands_{k}": v for k, v in self.commands.counts.items()},
        }
        if self.config_version is not None:
            counters["config_version"] = self.config_version
        return wire.Status(
            state=state,
            agent_version=AGENT_VERSION,
            devices=self.device_state if state is wire.GatewayState.ONLINE else {},
            reasons={device: runner.reason for device, runner in self.runners.items()
                     if runner.reason and state is wire.GatewayState.ONLINE},
            queue_depth=self.queue.readings,
            counters=counters,
            ts=int(time.time() * 1000),
        )

    async def run(self) -> None:
        await self.queue.open()
        log.info("gateway %s: stream %s, %d batches queued",
                 self.config.gateway, self.queue.stream, self.queue.batches)
        if self.metrics is not None:
            self.metrics.start()
        try:
            if self.config.devices:
                self._start_devices(self.config.devices, self.profiles)
            else:
                saved = await self.queue.get_meta("gateway_config")
                if saved is not None:
                    await self._apply_config(saved.encode(), persist=False)
                else:
                    log.info("gateway %s: waiting for its config on %s", self.config.gateway,
                             wire.config_topic(self.config.gateway))
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.uplink.run())
                tasks.create_task(self.recorder.run())
                tasks.create_task(self._status_loop())
                tasks.create_task(self._config_loop())
        finally:
            await self._stop_devices()
            await self.commands.close()
            await self.recorder.flush()
            self.factory.close()
            await self.queue.close()
            if self.metrics is not None:
                self.metrics.stop()

    def _start_devices(self, devices: list[DeviceConfig], profiles: dict) -> None:
        for device in devices:
            runner = DeviceRunner(device, profiles[device.id],
                                  self.factory.create(device, profiles[device.id]),
                                  self._on_readings, self._on_state)
            self.runners[device.id] = runner
            self._device_tasks[device.id] = asyncio.create_task(runner.run(), name=device.id)

    async def _stop_devices(self) -> None:
        await cancel_until_done(self._device_tasks.values())
        self._device_tasks.clear()
        self.runners.clear()
        self.factory.close()

    def _on_readings(self, readings: ReadingBlock | list[Reading]) -> None:
        self.readings_total += len(readings)
        self.recorder.add(readings)

    def _on_state(self, _device: str, _state: str) -> None:
        asyncio.get_running_loop().create_task(self.uplink.publish_status())

    def _on_message(self, topic: str, payload: bytes) -> None:
        gateway = self.config.gateway
        if topic == wire.config_topic(gateway):
            self._configs.put_nowait(payload)
        elif topic.startswith(f"{wire.TOPIC_ROOT}/{gateway}/commands/"):
            self.commands.submit(topic.rsplit("/", 1)[1], payload)

    async def _on_connected(self) -> None:
        await self.commands.republish()

    async def _config_loop(self) -> None:
        while True:
            payload = await self._configs.get()
            if not payload:
                continue  # a cleared retained message
            if self.config.devices:
                log.info("gateway %s: devices come from the config file; the config topic "
                         "is ignored", self.config.gateway)
                continue
            await self._apply_config(payload, persist=True)

    async def _apply_config(self, payload: bytes, persist: bool) -> None:
        try:
            remote = parse_remote_config(payload, self.config.gateway)
        except ConfigError as err:
            log.error("gateway %s: config refused, keeping the current one: %s",
                      self.config.gateway, err.detail)
            return
        if self.config_version is not None and remote.version <= self.config_version:
            return
        log.info("gateway %s: applying config version %d (%d devices)",
                 self.config.gateway, remote.version, len(remote.devices))
        await self._stop_devices()
        self.profiles = remote.profiles
        self.config_version = remote.version
        self._start_devices(remote.devices, remote.profiles)
        if persist:
            await self.queue.set_meta("gateway_config", payload.decode())
        await self.uplink.publish_status()

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.status_interval_s)
            await self.uplink.publish_status()
            await self.commands.republish()  # results nobody took yet (API not subscribed)
