"""MQTT field devices: JSON state messages on a field broker mapped to points, writes published
to the device's command topic and confirmed by the next state message carrying the value.

Speaks through cityops.mqtt (the only paho import). Each device has its own session to the
field broker, so one misbehaving device's broker account cannot stall another's. The session
is persistent, under a client id fixed by gateway and device: state messages published while
the agent reconnects or restarts wait at the field broker instead of being lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import defaultdict
from typing import Any

import orjson

from cityops.errors import BrokerUnavailable, DeviceRejected, DeviceUnreachable
from cityops.mqtt import NO_MATCHING_SUBSCRIBERS, MqttConnection
from cityops.wire import Quality, Value
from edge_agents.driver import OnReadings, method_values
from edge_agents.drivers.mqtt.config import MqttEndpoint
from edge_agents.points import DataType, Method, MqttPoint, MqttProfile, Reading

log = logging.getLogger(__name__)
MAX_EARLY_READINGS = 100_000
MAX_CLOCK_AHEAD_MS = 60_000  # a device clock further ahead than this is not believed
_TRUE = {"true", "on", "1", "yes"}
_FALSE = {"false", "off", "0", "no"}


def field_of(body: Any, path: str) -> tuple[bool, Any]:
    """(found, value) at a dotted path of a JSON object."""
    for key in path.split("."):
        if not isinstance(body, dict) or key not in body:
            return False, None
        body = body[key]
    return True, body


def nested(path: str, value: Any) -> dict[str, Any]:
    """{"a": {"b": value}} for the path a.b."""
    keys = path.split(".")
    body: Any = value
    for key in reversed(keys):
        body = {key: body}
    return body


def convert(point: MqttPoint, raw: Any) -> Value | None:
    """A JSON value as the point's engineering value; None when it does not fit."""
    if point.data_type is DataType.BOOL:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int | float):
            return raw != 0
        if isinstance(raw, str) and raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        return None
    if point.data_type is DataType.STRING:
        return raw if isinstance(raw, str) else None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        return None
    return point.to_engineering(raw)


class MqttDriver:
    def __init__(
        self, device: str, profile: MqttProfile, endpoint: MqttEndpoint, timeout_s: float = 5.0,
        gateway: str = "",
    ) -> None:
        self.device, self.profile, self.endpoint = device, profile, endpoint
        self.timeout_s = timeout_s
        # the same id on every connect: the broker finds the session it kept for us
        self.client_id = endpoint.client_id or "-".join(
            part for part in ("cityops", gateway, device) if part)
        self._conn: MqttConnection | None = None
        self._by_topic: dict[str, list[MqttPoint]] = defaultdict(list)
        for point in profile.points:
            self._by_topic[endpoint.topic(point.address.topic)].append(point)
        self._latest: dict[str, Reading] = {}
        self._changed = asyncio.Event()
        self._on_readings: OnReadings | None = None
        # what the kept session delivers at connect, before subscribe() takes readings
        self._early: list[Reading] = []

    @property
    def pushes(self) -> bool:
        return True

    async def connect(self) -> None:
        await self.close()
        ep = self.endpoint
        conn = MqttConnection(
            ep.url, client_id=self.client_id, username=ep.username, password=ep.password(),
            on_message=self._on_message, clean_start=ep.session_expiry_s == 0,
            session_expiry_s=ep.session_expiry_s,
        )
        try:
            await conn.connect(self.timeout_s)
            await conn.subscribe([(topic, ep.qos) for topic in self._by_topic], self.timeout_s)
        except (BrokerUnavailable, TimeoutError) as err:
            await conn.close()
            raise DeviceUnreachable(f"{self.device}: field broker {ep.url}: {err}") from err
        self._conn = conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    def _on_message(self, topic: str, payload: bytes, _mid: int, _qos: int) -> None:
        points = self._by_topic.get(topic)
        if not points:
            return
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            log.warning("device %s: payload on %s is not JSON", self.device, topic)
            body = None
        now = self._stamp(body)
        readings = []
        for point in points:
            found, raw = field_of(body, point.address.field)
            if not found:
                continue  # partial updates are normal: the field was not in this message
            value = convert(point, raw)
            quality = Quality.GOOD if value is not None else Quality.BAD
            reading = Reading(self.device, point.name, now, value, quality)
            self._latest[point.name] = reading
            readings.append(reading)
        if readings:
            self._changed.set()
            if self._on_readings is not None:
                self._on_readings(readings)
            elif len(self._early) < MAX_EARLY_READINGS:
                self._early.extend(readings)

    def _stamp(self, body: Any) -> int:
        """The message's time: the device's own when configured and sane (a message kept by
        the broker while the agent was away is stamped when it was sent), else now."""
        now = int(time.time() * 1000)
        if self.endpoint.ts_field is None:
            return now
        found, ts = field_of(body, self.endpoint.ts_field)
        if not found or isinstance(ts, bool) or not isinstance(ts, int | float):
            return now
        ms = ts * 1000 if self.endpoint.ts_unit == "s" else ts
        return int(ms) if 0 <= ms <= now + MAX_CLOCK_AHEAD_MS else now

    async def read(self) -> list[Reading]:
        """The latest state received (state topics are pushed, not polled)."""
        if self._conn is None:
            raise DeviceUnreachable(f"{self.device}: not connected")
        return list(self._latest.values())

    async def subscribe(self, on_readings: OnReadings) -> None:
        conn = self._conn
        if conn is None or conn.closed is None:
            raise DeviceUnreachable(f"{self.device}: not connected")
        self._on_readings = on_readings
        early, self._early = self._early, []
        if early:
            on_readings(early)
        try:
            reason = await asyncio.shield(conn.closed)
        finally:
            self._on_readings = None
        raise DeviceUnreachable(f"{self.device}: field broker session ended: {reason}")

    async def write(self, point_name: str, value: Value) -> Value:
        point = self.profile.point(point_name)
        assert isinstance(point, MqttPoint)
        conn = self._conn
        if conn is None or not conn.is_connected:
            raise DeviceUnreachable(f"{self.device}: not connected")
        address = point.address
        if address.command_topic is None:
            raise DeviceRejected(f"point {point.name} has no command topic")
        raw = value if isinstance(value, bool | str) else point.to_raw(value)
        body = nested(address.command_field or address.field, raw)
        try:
            code = await asyncio.wait_for(
                conn.publish(self.endpoint.topic(address.command_topic), orjson.dumps(body),
                             qos=1),
                self.timeout_s,
            )
        except (BrokerUnavailable, TimeoutError) as err:
            raise DeviceUnreachable(f"{self.device}: command not delivered: {err}") from err
        if code == NO_MATCHING_SUBSCRIBERS:  # an MQTT v5 broker tells us nobody listens
            raise DeviceUnreachable(f"{self.device}: nothing subscribes to the command topic")
        return await self._readback(point, value)

    async def _readback(self, point: MqttPoint, expected: Value) -> Value:
        """Wait for a state message that shows the value; else the latest one, or an error."""
        deadline = time.monotonic() + self.endpoint.readback_timeout_s
        while True:
            latest = self._latest.get(point.name)
            if latest is not None and latest.value is not None and _matches(latest.value,
                                                                             expected, point):
                return latest.value
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        if latest is not None and latest.value is not None:
            return latest.value  # the caller compares and reports the mismatch
        raise DeviceUnreachable(f"{self.device}: no state for {point.name} after the command")

    async def call(self, method: Method, args: dict[str, Value]) -> Value | None:
        readback: Value | None = None
        for point, value in method_values(method, args):
            readback = await self.write(point, value)
        return readback


def _matches(value: Value, expected: Value, point: MqttPoint) -> bool:
    if isinstance(expected, bool | str) or isinstance(value, bool | str):
        return value == expected
    if isinstance(value, int) and isinstance(expected, int):  # exact, also above 2**53
        return abs(value - expected) <= abs(point.scale) / 2
    step = 0.0 if point.data_type.is_float else abs(point.scale) / 2
    return math.isclose(value, expected, rel_tol=1e-6, abs_tol=step)
