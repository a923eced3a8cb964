"""ONVIF cameras (Profile S): device information, media profiles, RTSP stream and snapshot URIs,
PTZ presets and snapshots as profile methods, motion and tamper from PullPoint events.

A push driver: at connect it reads what the camera is (and its media URIs) and, when the
profile has event points and the camera offers the event service, opens a PullPoint
subscription; subscribe() then long-polls PullMessages, renews the subscription before it
ends, and without events checks the camera every poll interval. Event states arrive as
boolean readings (motion, tamper) that the ingest rules turn into alarms like any other point.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cityops.errors import DeviceError, DeviceRejected
from cityops.wire import Quality, Value
from edge_agents.driver import OnReadings
from edge_agents.drivers.onvif.config import OnvifEndpoint
from edge_agents.drivers.onvif.session import CameraSession, EventMessage, data_url
from edge_agents.points import DataType, Method, OnvifPoint, OnvifProfile, Reading

log = logging.getLogger(__name__)
_TRUE = {"true", "1", "on"}


def _now_ms() -> int:
    return int(time.time() * 1000)


def public_uri(uri: str) -> str:
    """The URI without user and password: some cameras put theirs in the RTSP and snapshot
    URIs they answer, and readings are stored and shown to every console user."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def convert(point: OnvifPoint, raw: Any) -> Value | None:
    """A camera's value (event items are text) as the point's value; None if it does not fit."""
    if raw is None:
        return None
    if point.data_type is DataType.BOOL:
        return raw if isinstance(raw, bool) else str(raw).strip().lower() in _TRUE
    if point.data_type is DataType.STRING:
        return str(raw)
    try:
        number = float(raw) if point.data_type.is_float else int(str(raw).strip())
    except ValueError:
        return None
    return point.to_engineering(number)


class OnvifDriver:
    def __init__(self, device: str, profile: OnvifProfile, endpoint: OnvifEndpoint,
                 timeout_s: float = 5.0, poll_interval_s: float = 10.0) -> None:
        self.device, self.profile, self.endpoint = device, profile, endpoint
        self.timeout_s, self.poll_interval_s = timeout_s, poll_interval_s
        self._session: CameraSession | None = None
        self._static: list[Reading] = []  # what connect() learnt, delivered first
        self._events = [p for p in profile.points if p.address.source == "event"]
        self._media_profile: str | None = None
        self._subscribed_until = 0.0

    @property
    def pushes(self) -> bool:
        return True

    async def connect(self) -> None:
        await self.close()
        ep = self.endpoint
        session = CameraSession(self.device, ep.host, ep.port, ep.username, ep.password(),
                                self.timeout_s, adjust_time=ep.adjust_time)
        self._session = session
        await session.open()
        info = await session.device_information()
        tokens = await session.profile_tokens()
        self._media_profile = self._choose_profile(tokens)
        media = {"profile_count": len(tokens)}
        self._static = [self._reading(p, info, media, await self._media(p, media))
                        for p in self.profile.points if p.address.source != "event"]
        if self._events and ep.events:
            if session.offers_events:
                await session.subscribe(ep.subscription_s)
                self._subscribed_until = time.monotonic() + ep.subscription_s
            else:
                log.info("camera %s offers no event service: event points read bad", self.device)
                now = _now_ms()
                self._static += [Reading(self.device, p.name, now, None, Quality.BAD)
                                 for p in self._events]

    def _choose_profile(self, tokens: list[str]) -> str:
        wanted = self.endpoint.media_profile
        if wanted is not None and wanted not in tokens:
            raise DeviceRejected(f"{self.device}: the camera has no media profile {wanted!r} "
                                 f"(it has {', '.join(tokens) or 'none'})")
        if not tokens:
            raise DeviceRejected(f"{self.device}: the camera has no media profile")
        return wanted or tokens[0]

    async def _media(self, point: OnvifPoint, media: dict[str, Any]) -> DeviceError | None:
        """Fetch a URI a point needs; a camera that refuses it costs only that point."""
        field = point.address.field
        if point.address.source != "media" or field in media:
            return None
        assert self._session is not None and self._media_profile is not None
        try:
            if field == "stream_uri":
                uri = await self._session.stream_uri(self._media_profile)
            else:
                uri = await self._session.snapshot_uri(self._media_profile)
            media[field] = public_uri(uri)
        except DeviceRejected as err:
            log.warning("camera %s: %s", self.device, err.detail)
            return err
        return None

    def _reading(self, point: OnvifPoint, info: dict[str, str], media: dict[str, Any],
                 failed: DeviceError | None) -> Reading:
        source, field = point.address.source, point.address.field or ""
        raw = True if source == "session" else (info if source == "device" else media).get(field)
        value = None if failed else convert(point, raw)
        quality = Quality.GOOD if value is not None else Quality.BAD
        return Reading(self.device, point.name, _now_ms(), value, quality)

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def read(self) -> list[Reading]:
        return list(self._static)

    async def subscribe(self, on_readings: OnReadings) -> None:
        session = self._require()
        on_readings(list(self._static))
        pulling = self._subscribed_until > 0
        while True:
            if not pulling:
                await asyncio.sleep(self.poll_interval_s)
                await session.clock()  # the camera still answers: no reading, no news
                continue
            if self._subscribed_until - time.monotonic() < self.endpoint.subscription_s / 3:
                await session.renew(self.endpoint.subscription_s)
                self._subscribed_until = time.monotonic() + self.endpoint.subscription_s
            readings = self._event_readings(await session.pull(self.endpoint.pull_timeout_s))
            if readings:
                on_readings(readings)

    def _event_readings(self, messages: list[EventMessage]) -> list[Reading]:
        readings = []
        for message in messages:
            for point in self._events:
                if point.address.topic == message.topic and point.address.item in message.items:
                    value = convert(point, message.items[point.address.item])
                    readings.append(Reading(self.device, point.name, message.ts_ms, value,
                                            Quality.GOOD if value is not None else Quality.BAD))
        return readings

    async def write(self, point: str, value: Value) -> Value:
        raise DeviceRejected(f"{self.device}: camera points are read-only; use its methods")

    async def call(self, method: Method, args: dict[str, Value]) -> Value | None:
        session = self._require()
        assert method.onvif is not None and self._media_profile is not None
        if method.onvif.operation == "snapshot":
            image = await session.snapshot(self._media_profile,
                                           self.endpoint.snapshot_auth == "basic",
                                           self.endpoint.snapshot_max_bytes)
            return data_url(image)
        wanted = str(args.get("preset", ""))
        presets = await session.presets(self._media_profile)
        token = wanted if wanted in presets else next(
            (t for t, name in presets.items() if name == wanted), None)
        if token is None:
            known = ", ".join(f"{t} ({n})" for t, n in presets.items()) or "none"
            raise DeviceRejected(f"{self.device}: no PTZ preset {wanted!r} (presets: {known})")
        await session.goto_preset(self._media_profile, token)
        return token

    def _require(self) -> CameraSession:
        if self._session is None:
            raise DeviceRejected(f"{self.device}: not connected")
        return self._session
