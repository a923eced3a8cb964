"""An MQTT field device simulated from its profile: publishes JSON state (one message per state
topic, points nested by their field path) every tick, and applies commands received on the
command topics, answering with its new state at once, as real sensors and actuators do."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any

import orjson

from cityops.backoff import Backoff
from cityops.errors import BrokerUnavailable
from cityops.mqtt import MqttConnection
from edge_agents.drivers.mqtt.driver import field_of
from edge_agents.points import DataType, MqttPoint, MqttProfile
from simulators.values import simulated_value

log = logging.getLogger(__name__)


def _merge(into: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    for key in keys[:-1]:
        into = into.setdefault(key, {})
    into[keys[-1]] = value


class MqttSensor:
    def __init__(
        self, profile: MqttProfile, url: str, base_topic: str, *, tick_s: float = 1.0,
        username: str | None = None, password: str | None = None, retain: bool = True,
    ) -> None:
        self.profile, self.url, self.base_topic = profile, url, base_topic.rstrip("/")
        self.tick_s, self.username, self.password, self.retain = tick_s, username, password, retain
        self.values: dict[str, Any] = {}
        self._last: dict[str, float] = {}
        self._conn: MqttConnection | None = None
        self.commands_applied = 0
        for point in profile.points:
            self.values[point.name] = self._initial(point)

    def _initial(self, point: MqttPoint) -> Any:
        if point.simulate is not None:
            return self._typed(point, simulated_value(point.simulate, time.time(), None))
        return {DataType.BOOL: False, DataType.STRING: ""}.get(point.data_type, 0)

    @staticmethod
    def _typed(point: MqttPoint, value: float) -> Any:
        """Engineering value -> the raw JSON value the device publishes."""
        if point.data_type is DataType.BOOL:
            return value >= 0.5
        raw = point.to_raw(value)
        return round(raw, 3) if isinstance(raw, float) else raw

    def tick(self, t: float) -> None:
        for point in self.profile.points:
            if point.simulate is not None and not point.writable:
                value = simulated_value(point.simulate, t, self._last.get(point.name))
                self._last[point.name] = value
                self.values[point.name] = self._typed(point, value)

    def state_messages(self) -> dict[str, bytes]:
        bodies: dict[str, dict[str, Any]] = defaultdict(dict)
        for point in self.profile.points:
            _merge(bodies[point.address.topic], point.address.field, self.values[point.name])
        return {f"{self.base_topic}/{t}": orjson.dumps(b) for t, b in bodies.items()}

    def apply(self, topic: str, payload: bytes) -> bool:
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return False
        applied = False
        for point in self.profile.points:
            address = point.address
            if topic != f"{self.base_topic}/{address.command_topic}":
                continue
            found, raw = field_of(body, address.command_field or address.field)
            if found:
                self.values[point.name] = raw
                applied = True
        self.commands_applied += applied
        return applied

    async def publish_state(self) -> None:
        conn = self._conn
        if conn is None or not conn.is_connected:
            return
        for topic, payload in self.state_messages().items():
            conn.publish(topic, payload, qos=1, retain=self.retain)

    def _on_message(self, topic: str, payload: bytes, _mid: int, _qos: int) -> None:
        if self.apply(topic, payload):
            asyncio.get_running_loop().create_task(self.publish_state())

    async def serve(self) -> None:
        """Publish forever, reconnecting to the broker when it goes away."""
        commands = sorted({f"{self.base_topic}/{p.address.command_topic}"
                           for p in self.profile.points if p.address.command_topic})
        backoff = Backoff(initial_s=0.2, cap_s=5)
        while True:
            conn = MqttConnection(self.url, client_id=f"sim-{self.profile.model}-{id(self)}",
                                  username=self.username, password=self.password,
                                  on_message=self._on_message)
            try:
                await conn.connect()
                if commands:
                    await conn.subscribe([(t, 1) for t in commands])
            except (BrokerUnavailable, TimeoutError):
                await conn.close()
                await asyncio.sleep(backoff.next_delay())
                continue
            backoff.reset()
            self._conn = conn
            try:
                while conn.is_connected:
                    self.tick(time.time())
                    await self.publish_state()
                    await asyncio.sleep(self.tick_s)
            finally:
                self._conn = None
                await conn.close()


async def serve(profile: MqttProfile, url: str, base_topic: str, tick_s: float = 1.0,
                username: str | None = None, password: str | None = None) -> None:
    log.info("simulating %s on %s under %s", profile.model, url, base_topic)
    await MqttSensor(profile, url, base_topic, tick_s=tick_s, username=username,
                     password=password).serve()
