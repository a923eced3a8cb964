"""An ONVIF camera (a Profile S subset) on 127.0.0.1, for tests and the demo.

SOAP 1.2 over HTTP (aiohttp), every operation but GetSystemDateAndTime behind a WS-Security
UsernameToken digest. Serves: device information, GetServices, media profiles with their
RTSP stream URIs and snapshot URIs, a JPEG snapshot behind HTTP digest (generated at start
with Pillow), PTZ presets (GetPresets, GotoPreset), and PullPoint event subscriptions that
carry the camera's motion and tamper states (property events: Initialized, then Changed).
Written from the ONVIF Core, Media, PTZ and Event specifications' WSDL and text.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiohttp import web
from lxml import etree

from simulators.onvif import soap

TOPICS = {"motion": "tns1:VideoSource/MotionAlarm",
          "tamper": "tns1:VideoSource/GlobalSceneChange/ImagingService"}
_DIALECT = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
MAX_SUBSCRIPTIONS = 4  # like a camera's small limit: old ones expire, new ones wait
MAX_PULL_WAIT_S = 10.0


@dataclass
class Subscription:
    terminate_at: datetime
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)


@dataclass
class CameraState:
    name: str = "cam-sim"
    serial: str = "SIM0001"
    profiles: tuple[str, ...] = ("main", "sub")
    presets: dict[str, str] = field(default_factory=lambda: {"1": "gate", "2": "square"})
    current_preset: str | None = None
    motion: bool = False
    tamper: bool = False
    snapshot: bool = True  # False: GetSnapshotUri answers ActionNotSupported
    events: bool = True  # False: no event service in GetServices
    clock_offset_s: float = 0.0  # the camera's clock against the true time (no NTP)
    get_services: bool = True  # False: an older camera, its services by GetCapabilities only


class OnvifCameraSimulator:
    def __init__(self, users: dict[str, str], state: CameraState | None = None,
                 basic_snapshot: bool = False) -> None:
        self.users = users
        self.state = state or CameraState()
        self.guard = soap.DigestGuard(users, basic=basic_snapshot)
        self.subscriptions: dict[str, Subscription] = {}
        self.calls: list[str] = []  # operations answered, in order (tests read it)
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.jpeg = b""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> int:
        self.jpeg = await asyncio.to_thread(make_jpeg, self.state.name)
        app = web.Application()
        app.router.add_post("/onvif/{service}", self._soap)
        app.router.add_post("/onvif/pullpoint/{sub}", self._soap)
        app.router.add_get("/onvif/snapshot.jpg", self._snapshot)
        # the simulator's own control (not ONVIF): tests and demos move motion and tamper
        app.router.add_post("/_simulator/state", self._control)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def set_event(self, name: str, value: bool) -> None:
        """Change the motion or tamper state: every live subscription gets a message."""
        setattr(self.state, name, value)
        message = _notification(name, value, "Changed")
        for sub in self.subscriptions.values():
            sub.queue.put_nowait(message)

    def clock(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.state.clock_offset_s)

    async def _control(self, request: web.Request) -> web.Response:
        body = await request.json()
        for name in TOPICS:
            if isinstance(body.get(name), bool):
                self.set_event(name, body[name])
        return web.json_response({"motion": self.state.motion, "tamper": self.state.tamper,
                                  "preset": self.state.current_preset, "calls": len(self.calls)})

    async def _soap(self, request: web.Request) -> web.Response:
        try:
            header, body = soap.parse(await request.read())
            operation = etree.QName(body).localname
            if operation != "GetSystemDateAndTime":
                soap.check_username_token(header, self.users, self.clock())
            self.calls.append(operation)
            handler = getattr(self, f"_op_{operation}", None)
            if handler is None:
                raise soap.SoapFault("ter:ActionNotSupported", f"{operation} is not supported",
                                     code="env:Receiver", status=400)
            answer = await handler(body, request)
        except soap.SoapFault as err:
            return web.Response(body=soap.fault(err), status=err.status,
                                content_type="application/soap+xml")
        return web.Response(body=soap.envelope(answer), content_type="application/soap+xml")

    async def _snapshot(self, request: web.Request) -> web.Response:
        if not self.guard.allows(request.method, request.headers.get("Authorization", "")):
            return web.Response(status=401, headers={"WWW-Authenticate": self.guard.challenge()})
        return web.Response(body=self.jpeg, content_type="image/jpeg")

    # --- device management ---
    async def _op_GetSystemDateAndTime(self, _body, _request) -> str:
        now = self.clock()
        return ("<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
                "<tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false"
                "</tt:DaylightSavings><tt:UTCDateTime><tt:Time>"
                f"<tt:Hour>{now.hour}</tt:Hour><tt:Minute>{now.minute}</tt:Minute>"
                f"<tt:Second>{now.second}</tt:Second></tt:Time><tt:Date><tt:Year>{now.year}"
                f"</tt:Year><tt:Month>{now.month}</tt:Month><tt:Day>{now.day}</tt:Day>"
                "</tt:Date></tt:UTCDateTime></tds:SystemDateAndTime>"
                "</tds:GetSystemDateAndTimeResponse>")

    async def _op_GetDeviceInformation(self, _body, _request) -> str:
        return ("<tds:GetDeviceInformationResponse><tds:Manufacturer>CityOps</tds:Manufacturer>"
                "<tds:Model>ONVIF camera simulator</tds:Model><tds:FirmwareVersion>1.0"
                f"</tds:FirmwareVersion><tds:SerialNumber>{self.state.serial}</tds:SerialNumber>"
                "<tds:HardwareId>sim</tds:HardwareId></tds:GetDeviceInformationResponse>")

    async def _op_GetServices(self, _body, _request) -> str:
        if not self.state.get_services:
            raise soap.SoapFault("ter:ActionNotSupported", "GetServices is not supported",
                                 code="env:Receiver")
        services = [("http://www.onvif.org/ver10/device/wsdl", "device_service"),
                    ("http://www.onvif.org/ver10/media/wsdl", "media"),
                    ("http://www.onvif.org/ver20/ptz/wsdl", "ptz")]
        if self.state.events:
            services.append(("http://www.onvif.org/ver10/events/wsdl", "events"))
        entries = "".join(
            f"<tds:Service><tds:Namespace>{ns}</tds:Namespace><tds:XAddr>{self.base}/onvif/"
            f"{path}</tds:XAddr><tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor>"
            "</tds:Version></tds:Service>" for ns, path in services)
        return f"<tds:GetServicesResponse>{entries}</tds:GetServicesResponse>"

    async def _op_GetCapabilities(self, _body, _request) -> str:
        """The Core spec's older way to find the services (tt:Capabilities)."""
        base = f"{self.base}/onvif"
        events = (f"<tt:Events><tt:XAddr>{base}/events</tt:XAddr><tt:WSSubscriptionPolicySupport>"
                  "false</tt:WSSubscriptionPolicySupport><tt:WSPullPointSupport>true"
                  "</tt:WSPullPointSupport><tt:WSPausableSubscriptionManagerInterfaceSupport>"
                  "false</tt:WSPausableSubscriptionManagerInterfaceSupport></tt:Events>"
                  if self.state.events else "")
        return ("<tds:GetCapabilitiesResponse><tds:Capabilities>"
                f"<tt:Device><tt:XAddr>{base}/device_service</tt:XAddr></tt:Device>{events}"
                f"<tt:Media><tt:XAddr>{base}/media</tt:XAddr><tt:StreamingCapabilities>"
                "<tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP>"
                "<tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>"
                f"<tt:PTZ><tt:XAddr>{base}/ptz</tt:XAddr></tt:PTZ>"
                "</tds:Capabilities></tds:GetCapabilitiesResponse>")

    # --- media ---
    async def _op_GetProfiles(self, _body, _request) -> str:
        profiles = "".join(
            f'<trt:Profiles token="{token}" fixed="true"><tt:Name>{token}</tt:Name>'
            "</trt:Profiles>" for token in self.state.profiles)
        return f"<trt:GetProfilesResponse>{profiles}</trt:GetProfilesResponse>"

    def _profile(self, body) -> str:
        token = body.findtext("trt:ProfileToken", namespaces=soap.NAMESPACES) or ""
        if token not in self.state.profiles:
            raise soap.SoapFault("ter:NoProfile", f"no profile {token!r}", code="env:Sender")
        return token

    async def _op_GetStreamUri(self, body, _request) -> str:
        token = self._profile(body)
        return _media_uri("GetStreamUriResponse",
                          f"rtsp://127.0.0.1:554/Streaming/{token}")

    async def _op_GetSnapshotUri(self, body, _request) -> str:
        self._profile(body)
        if not self.state.snapshot:
            raise soap.SoapFault("ter:ActionNotSupported", "snapshots are not offered",
                                 code="env:Receiver")
        return _media_uri("GetSnapshotUriResponse", f"{self.base}/onvif/snapshot.jpg")

    # --- PTZ ---
    async def _op_GetPresets(self, body, _request) -> str:
        self._ptz_profile(body)
        presets = "".join(f'<tptz:Preset token="{t}"><tt:Name>{n}</tt:Name></tptz:Preset>'
                          for t, n in self.state.presets.items())
        return f"<tptz:GetPresetsResponse>{presets}</tptz:GetPresetsResponse>"

    async def _op_GotoPreset(self, body, _request) -> str:
        self._ptz_profile(body)
        token = body.findtext("tptz:PresetToken", namespaces=soap.NAMESPACES) or ""
        if token not in self.state.presets:
            raise soap.SoapFault("ter:NoToken", f"no preset {token!r}")
        self.state.current_preset = token
        return "<tptz:GotoPresetResponse/>"

    def _ptz_profile(self, body) -> None:
        token = body.findtext("tptz:ProfileToken", namespaces=soap.NAMESPACES) or ""
        if token not in self.state.profiles:
            raise soap.SoapFault("ter:NoProfile", f"no profile {token!r}")

    # --- events (PullPoint) ---
    async def _op_CreatePullPointSubscription(self, body, _request) -> str:
        if not self.state.events:
            raise soap.SoapFault("ter:ActionNotSupported", "no events", code="env:Receiver")
        now = datetime.now(UTC)
        self.subscriptions = {k: s for k, s in self.subscriptions.items()
                              if s.terminate_at > now}
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise soap.SoapFault("ter:MaxNotificationProducers", "too many subscriptions",
                                 code="env:Receiver")
        ttl = _duration(body.findtext("tev:InitialTerminationTime",
                                      namespaces=soap.NAMESPACES) or "PT60S")
        sub_id = str(next(self._ids))
        sub = self.subscriptions[sub_id] = Subscription(now + ttl)
        for name in TOPICS:  # property events start with their current state
            sub.queue.put_nowait(_notification(name, getattr(self.state, name), "Initialized"))
        return ("<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference>"
                f"<wsa:Address>{self.base}/onvif/pullpoint/{sub_id}</wsa:Address>"
                f"</tev:SubscriptionReference><wsnt:CurrentTime>{soap.xsd_time(now)}"
                f"</wsnt:CurrentTime><wsnt:TerminationTime>{soap.xsd_time(sub.terminate_at)}"
                "</wsnt:TerminationTime></tev:CreatePullPointSubscriptionResponse>")

    def _subscription(self, request: web.Request) -> Subscription:
        sub = self.subscriptions.get(request.match_info.get("sub", ""))
        if sub is None or sub.terminate_at < datetime.now(UTC):
            raise soap.SoapFault("wsrf-rw:ResourceUnknownFault", "no such subscription")
        return sub

    async def _op_PullMessages(self, body, request) -> str:
        sub = self._subscription(request)
        wait = min(_duration(body.findtext("tev:Timeout", namespaces=soap.NAMESPACES)
                             or "PT1S").total_seconds(), MAX_PULL_WAIT_S)
        limit = int(body.findtext("tev:MessageLimit", namespaces=soap.NAMESPACES) or 10)
        messages: list[str] = []
        try:
            messages.append(await asyncio.wait_for(sub.queue.get(), wait))
            while len(messages) < limit and not sub.queue.empty():
                messages.append(sub.queue.get_nowait())
        except TimeoutError:
            pass
        now = datetime.now(UTC)
        return (f"<tev:PullMessagesResponse><tev:CurrentTime>{soap.xsd_time(now)}"
                f"</tev:CurrentTime><tev:TerminationTime>{soap.xsd_time(sub.terminate_at)}"
                f"</tev:TerminationTime>{''.join(messages)}</tev:PullMessagesResponse>")

    async def _op_Renew(self, body, request) -> str:
        sub = self._subscription(request)
        now = datetime.now(UTC)
        sub.terminate_at = now + _duration(
            body.findtext("wsnt:TerminationTime", namespaces=soap.NAMESPACES) or "PT60S")
        return (f"<wsnt:RenewResponse><wsnt:TerminationTime>{soap.xsd_time(sub.terminate_at)}"
                f"</wsnt:TerminationTime><wsnt:CurrentTime>{soap.xsd_time(now)}"
                "</wsnt:CurrentTime></wsnt:RenewResponse>")

    async def _op_Unsubscribe(self, _body, request) -> str:
        self.subscriptions.pop(request.match_info.get("sub", ""), None)
        return "<wsnt:UnsubscribeResponse/>"


async def serve(port: int, username: str, password: str, name: str = "cam-sim") -> None:
    """Run one simulated camera until cancelled."""
    camera = OnvifCameraSimulator({username: password}, CameraState(name=name))
    await camera.start(port)
    try:
        await asyncio.Event().wait()
    finally:
        await camera.stop()


def _media_uri(element: str, uri: str) -> str:
    return (f"<trt:{element}><trt:MediaUri><tt:Uri>{uri}</tt:Uri><tt:InvalidAfterConnect>false"
            "</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot>"
            f"<tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:{element}>")


def _notification(name: str, value: bool, operation: str) -> str:
    when = soap.xsd_time(datetime.now(UTC))
    source = "VideoSourceConfigurationToken" if name == "tamper" else "Source"
    return (f'<wsnt:NotificationMessage><wsnt:Topic Dialect="{_DIALECT}">{TOPICS[name]}'
            f'</wsnt:Topic><wsnt:Message><tt:Message UtcTime="{when}" PropertyOperation='
            f'"{operation}"><tt:Source><tt:SimpleItem Name="{source}" Value="vs1"/></tt:Source>'
            f'<tt:Data><tt:SimpleItem Name="State" Value="{str(value).lower()}"/></tt:Data>'
            "</tt:Message></wsnt:Message></wsnt:NotificationMessage>")


_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$")


def _duration(text: str) -> timedelta:
    """An xs:duration of hours, minutes and seconds (what subscriptions use)."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise soap.SoapFault("ter:InvalidArgVal", f"duration {text!r} not understood")
    hours, minutes, seconds = match.groups()
    return timedelta(hours=int(hours or 0), minutes=int(minutes or 0),
                     seconds=float(seconds or 0))


def make_jpeg(name: str) -> bytes:
    """A small test card: the camera's name on a grey field, as a real JPEG."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (320, 180), (70, 80, 90))
    draw = ImageDraw.Draw(image)
    draw.rectangle((8, 8, 311, 171), outline=(230, 230, 230), width=2)
    draw.text((20, 80), f"{name} {datetime.now(UTC):%Y-%m-%d %H:%M:%S}Z", fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()
