"""The only onvif-zeep-async import: one camera session, its calls, and vendor errors turned
into the platform's DeviceError tree.

Every call is bounded by the device's timeout (the library's own defaults are 90 s). The
password goes only into the WS-Security UsernameToken (PasswordDigest: the password itself
never crosses the wire) and the snapshot's HTTP digest; it is never logged: errors name the
camera's host and port, never a URL with credentials.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from cityops.errors import DeviceAuthRefused, DeviceError, DeviceRejected, DeviceUnreachable

log = logging.getLogger(__name__)
T = TypeVar("T")
EVENTS_NS = "http://www.onvif.org/ver10/events/wsdl"
AUTH_RETRY_S = 60.0  # a refused password will not be accepted in a second


@dataclass(frozen=True)
class EventMessage:
    topic: str  # tns1:VideoSource/MotionAlarm
    items: dict[str, str]  # the message's Data simple items (State -> "true")
    ts_ms: int


class CameraSession:
    def __init__(self, device: str, host: str, port: int, username: str, password: str,
                 timeout_s: float, adjust_time: bool = False) -> None:
        self.device, self.where = device, f"{host}:{port}"
        self.timeout_s = timeout_s
        self._args = (host, port, username, password)
        self.adjust_time = adjust_time
        self._camera: Any = None
        self._pullpoint: Any = None  # PullMessages, at the subscription's address
        self._manager: Any = None  # Renew and Unsubscribe (WS-BaseNotification), same address

    async def open(self) -> None:
        from onvif import ONVIFCamera  # imported only where a camera is configured

        host, port, username, password = self._args
        # no_cache: the WSDL files are the package's own; zeep's SQLite cache is for remote ones
        self._camera = ONVIFCamera(host, port, username, password, no_cache=True,
                                   adjust_time=self.adjust_time)
        await self._bounded(self._camera.update_xaddrs(), "GetServices")

    async def close(self) -> None:
        camera, manager = self._camera, self._manager
        self._camera = self._pullpoint = self._manager = None
        if manager is not None:
            # cameras keep few subscriptions (often 2 to 10): give ours back rather than let it
            # hold a slot until it expires, or reconnects would soon find none free
            try:
                await asyncio.wait_for(manager.Unsubscribe(), self.timeout_s)
            except Exception as err:
                log.debug("camera %s: unsubscribe: %s", self.device, err)
        if camera is not None:
            try:
                await camera.close()
            except Exception as err:  # closing a broken session must not raise
                log.debug("camera %s: close: %s", self.device, err)

    @property
    def offers_events(self) -> bool:
        return bool(self._camera and self._camera.xaddrs.get(EVENTS_NS))

    async def device_information(self) -> dict[str, str]:
        service = await self._service("devicemgmt")
        info = await self._bounded(service.GetDeviceInformation(), "GetDeviceInformation")
        return {"manufacturer": info.Manufacturer, "model": info.Model,
                "firmware_version": info.FirmwareVersion, "serial_number": info.SerialNumber,
                "hardware_id": info.HardwareId}

    async def clock(self) -> None:
        """A cheap call that proves the camera still answers (and still takes our password)."""
        service = await self._service("devicemgmt")
        await self._bounded(service.GetDeviceInformation(), "GetDeviceInformation")

    async def profile_tokens(self) -> list[str]:
        service = await self._service("media")
        profiles = await self._bounded(service.GetProfiles(), "GetProfiles")
        return [p.token for p in profiles or []]

    async def stream_uri(self, profile: str) -> str:
        service = await self._service("media")
        setup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
        answer = await self._bounded(
            service.GetStreamUri({"StreamSetup": setup, "ProfileToken": profile}), "GetStreamUri")
        return str(answer.Uri)

    async def snapshot_uri(self, profile: str) -> str:
        service = await self._service("media")
        answer = await self._bounded(service.GetSnapshotUri({"ProfileToken": profile}),
                                     "GetSnapshotUri")
        return str(answer.Uri)

    async def snapshot(self, profile: str, basic: bool, max_bytes: int) -> bytes:
        """The JPEG at the profile's snapshot URI (HTTP digest, or basic)."""
        await self.snapshot_uri(profile)  # a camera without snapshots refuses here, clearly
        image = await self._bounded(
            self._camera.get_snapshot(profile, basic_auth=basic, timeout=self.timeout_s),
            "snapshot")
        if not image:
            raise DeviceRejected(f"{self.device}: the camera sent no snapshot")
        if len(image) > max_bytes:
            raise DeviceRejected(f"{self.device}: snapshot of {len(image)} bytes is over "
                                 f"snapshot_max_bytes ({max_bytes})")
        return image

    async def presets(self, profile: str) -> dict[str, str]:
        """token -> name of the profile's PTZ presets."""
        service = await self._service("ptz")
        found = await self._bounded(service.GetPresets({"ProfileToken": profile}), "GetPresets")
        return {p.token: p.Name or "" for p in found or []}

    async def goto_preset(self, profile: str, token: str) -> None:
        service = await self._service("ptz")
        await self._bounded(service.GotoPreset({"ProfileToken": profile, "PresetToken": token}),
                            "GotoPreset")

    async def subscribe(self, seconds: int) -> None:
        """A PullPoint subscription; its address becomes the pullpoint service's."""
        events = await self._service("events")
        answer = await self._bounded(events.CreatePullPointSubscription(
            {"InitialTerminationTime": f"PT{seconds}S"}), "CreatePullPointSubscription")
        address = answer.SubscriptionReference.Address._value_1
        self._camera.xaddrs[f"{EVENTS_NS}/PullPointSubscription"] = address
        self._pullpoint = await self._bounded(self._camera.create_pullpoint_service(),
                                              "PullPoint")
        self._manager = await self._bounded(
            self._camera.create_subscription_service("PullPointSubscription"), "Subscription")

    async def renew(self, seconds: int) -> None:
        await self._bounded(self._manager.Renew({"TerminationTime": f"PT{seconds}S"}),
                            "Renew")

    async def pull(self, wait_s: float, limit: int = 50) -> list[EventMessage]:
        answer = await self._bounded(
            self._pullpoint.PullMessages({"Timeout": dt.timedelta(seconds=wait_s),
                                          "MessageLimit": limit}),
            "PullMessages", extra_s=wait_s)
        return [m for m in map(_event, answer.NotificationMessage or []) if m is not None]

    async def _service(self, name: str) -> Any:
        if self._camera is None:
            raise DeviceUnreachable(f"{self.device}: not connected")
        return await self._bounded(self._camera.create_onvif_service(name), name)

    async def _bounded(self, call: Awaitable[T], what: str, extra_s: float = 0.0) -> T:
        try:
            return await asyncio.wait_for(call, self.timeout_s + extra_s)
        except DeviceError:
            raise
        except Exception as err:
            raise translate(err, f"{self.device} ({self.where}) {what}") from err


def translate(err: BaseException, where: str) -> DeviceError:
    """A vendor error as ours: refused credentials, no answer, or a refusal."""
    import aiohttp
    from onvif.exceptions import ONVIFAuthError, ONVIFError, ONVIFTimeoutError
    from zeep.exceptions import Fault, TransportError

    cause = err.__cause__ if isinstance(err, ONVIFError) and err.__cause__ else err
    if isinstance(cause, Fault):
        subcodes = " ".join(str(getattr(q, "localname", q)) for q in cause.subcodes or [])
        text = f"{cause.message} {subcodes}"
        if "NotAuthorized" in text or "not authorized" in text.lower():
            return DeviceAuthRefused(f"{where}: the camera refused the user or password (or "
                                     "the time they were signed at: is its clock right? see "
                                     "adjust_time)", retry_after_s=AUTH_RETRY_S)
        return DeviceRejected(f"{where}: {cause.message} ({subcodes or 'fault'})")
    if isinstance(err, ONVIFAuthError) or (
            isinstance(cause, TransportError) and cause.status_code == 401):
        return DeviceAuthRefused(f"{where}: the camera refused the user or password",
                                 retry_after_s=AUTH_RETRY_S)
    if isinstance(cause, TimeoutError | ONVIFTimeoutError):
        return DeviceUnreachable(f"{where}: no answer in time")
    if isinstance(cause, aiohttp.ClientError | OSError):
        return DeviceUnreachable(f"{where}: {type(cause).__name__}: {cause}")
    return DeviceRejected(f"{where}: {type(cause).__name__}: {cause}")


def _event(message: Any) -> EventMessage | None:
    """A NotificationMessage as (topic, data items, time); None when it has no topic."""
    topic = getattr(getattr(message, "Topic", None), "_value_1", None)
    body = getattr(getattr(message, "Message", None), "_value_1", None)
    if not topic or body is None:
        return None
    items: dict[str, str] = {}
    when = None
    if hasattr(body, "xpath"):  # an lxml element (tt:Message)
        when = body.get("UtcTime")
        for item in body.xpath("./*[local-name()='Data']/*[local-name()='SimpleItem']"):
            items[item.get("Name")] = item.get("Value")
    else:  # zeep resolved tt:Message
        when = getattr(body, "UtcTime", None)
        for item in getattr(getattr(body, "Data", None), "SimpleItem", None) or []:
            items[item.Name] = item.Value
    return EventMessage(str(topic).strip(), items, _epoch_ms(when))


def _epoch_ms(when: Any) -> int:
    if isinstance(when, str):
        try:
            when = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            when = None
    if isinstance(when, dt.datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return int(when.timestamp() * 1000)
    return int(dt.datetime.now(dt.UTC).timestamp() * 1000)


def data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
