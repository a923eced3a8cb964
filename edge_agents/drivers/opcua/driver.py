"""OPC-UA driver; the only asyncua client import.

Subscriptions are created with monitored items in batches (`batch_size` per request), so a
server that caps one CreateMonitoredItems request still takes thousands of nodes. We do not
use asyncua's own auto-reconnect: on any loss the session is dropped and the agent's device
runner reconnects with its capped backoff, creating a new session and every monitored item
again, so a server restart always ends with a live subscription, never a silent one.
Writes use the node's own data type: an Int32 node is written as an Int32 Variant.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import Any

from asyncua import Client, ua
from asyncua.common.subscription import DataChangeEvent, StatusChangeEvent
from asyncua.crypto import security_policies

from cityops.errors import DeviceError, DeviceRejected, DeviceUnreachable
from cityops.wire import Quality, Value
from edge_agents.driver import OnReadings, method_values
from edge_agents.drivers.opcua.config import OpcUaEndpoint
from edge_agents.points import DataType, Method, OpcUaPoint, OpcUaProfile, Reading

log = logging.getLogger(__name__)

VARIANT_OF = {
    DataType.BOOL: ua.VariantType.Boolean, DataType.INT16: ua.VariantType.Int16,
    DataType.UINT16: ua.VariantType.UInt16, DataType.INT32: ua.VariantType.Int32,
    DataType.UINT32: ua.VariantType.UInt32, DataType.INT64: ua.VariantType.Int64,
    DataType.UINT64: ua.VariantType.UInt64, DataType.FLOAT32: ua.VariantType.Float,
    DataType.FLOAT64: ua.VariantType.Double, DataType.STRING: ua.VariantType.String,
}
_INTEGER_VARIANTS = {
    ua.VariantType.SByte, ua.VariantType.Byte, ua.VariantType.Int16, ua.VariantType.UInt16,
    ua.VariantType.Int32, ua.VariantType.UInt32, ua.VariantType.Int64, ua.VariantType.UInt64,
}
_FLOAT_VARIANTS = {ua.VariantType.Float, ua.VariantType.Double}
_TRANSPORT_ERRORS = (ConnectionError, OSError, TimeoutError, asyncio.TimeoutError)
READ_CHUNK = 1000


def quality_of(status: ua.StatusCode | None) -> Quality:
    if status is None or status.is_good():
        return Quality.GOOD
    return Quality.UNCERTAIN if status.is_uncertain() else Quality.BAD


def variant_value(value: Value, vtype: ua.VariantType) -> Any:
    """A command's value as the Python type the node's Variant type needs."""
    try:
        if vtype == ua.VariantType.Boolean:
            return bool(value)
        if vtype in _INTEGER_VARIANTS:
            return round(value) if isinstance(value, float) else int(value)
        if vtype in _FLOAT_VARIANTS:
            return float(value)
    except (TypeError, ValueError) as err:
        raise DeviceRejected(f"{value!r} cannot be written as {vtype.name}") from err
    if vtype == ua.VariantType.String:
        return str(value)
    raise DeviceRejected(f"nodes of type {vtype.name} cannot be written")


def _translate(err: Exception, what: str) -> DeviceError:
    if isinstance(err, ua.UaStatusCodeError):
        return DeviceRejected(f"{what}: {err}", status=str(err))
    return DeviceUnreachable(f"{what}: {err!r}")


class OpcUaDriver:
    def __init__(
        self, device: str, profile: OpcUaProfile, endpoint: OpcUaEndpoint, timeout_s: float = 4.0,
        poll_interval_s: float = 1.0,
    ) -> None:
        self.device, self.profile, self.endpoint = device, profile, endpoint
        self.timeout_s, self.poll_interval_s = timeout_s, poll_interval_s
        self.polling_fallback = False
        self._client: Client | None = None
        self._lost: asyncio.Future[Exception] | None = None
        self._vtypes: dict[str, ua.VariantType] = {}
        self._pending: list[Reading] = []
        self.items_created = 0

    @property
    def pushes(self) -> bool:
        return self.endpoint.mode == "subscribe"

    def _where(self) -> str:
        return f"{self.device} at {self.endpoint.url}"

    async def connect(self) -> None:
        await self.close()
        ep = self.endpoint
        client = Client(ep.url, timeout=self.timeout_s, watchdog_intervall=ep.watchdog_interval_s)
        client.application_uri = ep.application_uri
        if ep.username:
            client.set_user(ep.username)
            password = ep.password()
            if password:
                client.set_password(password)
        loop = asyncio.get_running_loop()
        self._lost = loop.create_future()
        lost = self._lost

        async def on_lost(exc: Exception) -> None:
            if not lost.done():
                lost.set_result(exc)

        client.connection_lost_callback = on_lost
        try:
            if ep.security_policy != "None":
                await self._secure(client)
            await asyncio.wait_for(client.connect(auto_reconnect=False), self.timeout_s * 2)
        except (*_TRANSPORT_ERRORS, ua.UaError) as err:
            with contextlib.suppress(Exception):
                await client.disconnect()
            raise DeviceUnreachable(f"cannot connect to {self._where()}: {err!r}") from err
        self._client = client
        self._vtypes.clear()

    async def _secure(self, client: Client) -> None:
        ep = self.endpoint
        assert ep.certificate is not None and ep.private_key is not None
        # the agent's own certificate: made once (self-signed) when the files are missing
        await client.setup_self_signed_certificate(ep.private_key, ep.certificate)
        await client.set_security(
            security_policies.SecurityPolicyBasic256Sha256,
            certificate=str(ep.certificate),
            private_key=str(ep.private_key),
            server_certificate=str(ep.server_certificate) if ep.server_certificate else None,
            mode=getattr(ua.MessageSecurityMode, ep.security_mode),
        )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 2.0)

    def _require(self) -> Client:
        if self._client is None or (self._lost is not None and self._lost.done()):
            raise DeviceUnreachable(f"{self._where()}: not connected")
        return self._client

    # -- reading ------------------------------------------------------------------------------
    def _reading(self, point: OpcUaPoint, dv: ua.DataValue | None, now_ms: int) -> Reading:
        if dv is None or dv.Value is None:
            return Reading(self.device, point.name, now_ms, None, Quality.BAD)
        quality = quality_of(dv.StatusCode)
        raw = dv.Value.Value
        ts = now_ms
        if isinstance(dv.SourceTimestamp, dt.datetime):
            stamp = dv.SourceTimestamp
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=dt.UTC)
            ts = int(stamp.timestamp() * 1000)
        if isinstance(raw, bool | str):
            value: Value | None = raw
        elif isinstance(raw, int | float):
            value = point.to_engineering(raw)
        else:  # arrays, structures: not a reading we can store
            value, quality = None, Quality.BAD
        if quality is Quality.BAD:
            value = None
        return Reading(self.device, point.name, ts, value, quality)

    async def read(self) -> list[Reading]:
        client = self._require()
        points = self.profile.points
        readings: list[Reading] = []
        for start in range(0, len(points), READ_CHUNK):
            chunk = points[start : start + READ_CHUNK]
            try:
                values = await client.read_attributes([client.get_node(p.address.node)
                                                       for p in chunk])
            except (*_TRANSPORT_ERRORS, ua.UaError) as err:
                raise _translate(err, f"read from {self._where()}") from err
            now = int(time.time() * 1000)
            readings.extend(self._reading(p, dv, now) for p, dv in zip(chunk, values, strict=True))
        return readings

    async def subscribe(self, on_readings: OnReadings) -> None:
        """Monitored items for every point, created in batches; runs until the session ends."""
        client = self._require()
        ep = self.endpoint
        assert self._lost is not None
        try:
            sub = await client.create_subscription(ep.publishing_interval_ms, queue_maxsize=200_000)
            await self._create_items(sub, on_readings)
        except ua.UaStatusCodeError as err:
            # the server refuses subscriptions (unsupported, too many): poll it instead
            if not self.polling_fallback:
                log.warning("device %s: subscription refused (%s): polling every %s s",
                            self.device, err, self.poll_interval_s)
            self.polling_fallback = True
            await self._poll_forever(on_readings)
            return
        except (*_TRANSPORT_ERRORS, ua.UaError) as err:
            raise _translate(err, f"subscribe on {self._where()}") from err
        watchdog = asyncio.create_task(self._end_on_loss(sub))
        try:
            await self._consume(sub, on_readings)
        finally:
            watchdog.cancel()
        reason = self._lost.result() if self._lost.done() else "subscription closed"
        raise DeviceUnreachable(f"{self._where()}: session lost: {reason!r}")

    async def _create_items(self, sub: Any, on_readings: OnReadings) -> None:
        ep = self.endpoint
        points = self.profile.points
        failed: list[Reading] = []
        for start in range(0, len(points), ep.batch_size):
            chunk = points[start : start + ep.batch_size]
            requests = [self._item_request(start + i, p) for i, p in enumerate(chunk)]
            results = await sub.create_monitored_items(requests)
            now = int(time.time() * 1000)
            for point, result in zip(chunk, results, strict=True):
                if isinstance(result, ua.StatusCode):
                    log.warning("device %s point %s: not monitored: %s", self.device,
                                point.name, result.name)
                    failed.append(Reading(self.device, point.name, now, None, Quality.BAD))
                else:
                    self.items_created += 1
        if failed:
            on_readings(failed)

    def _item_request(self, index: int, point: OpcUaPoint) -> ua.MonitoredItemCreateRequest:
        ep, address = self.endpoint, point.address
        deadband = address.deadband if address.deadband is not None else ep.deadband
        mfilter = None
        if deadband and point.data_type.is_numeric:
            mfilter = ua.DataChangeFilter()
            mfilter.Trigger = ua.DataChangeTrigger.StatusValue
            mfilter.DeadbandType = ua.DeadbandType.Absolute
            mfilter.DeadbandValue = deadband / abs(point.scale or 1.0)  # in raw units
        sampling = address.sampling_interval_ms
        params = ua.MonitoringParameters()
        params.ClientHandle = index + 1  # our own handles: the point's index + 1
        params.SamplingInterval = sampling if sampling is not None else ep.sampling_interval_ms
        params.QueueSize = address.queue_size or ep.queue_size
        params.DiscardOldest = True
        if mfilter is not None:
            params.Filter = mfilter
        request = ua.MonitoredItemCreateRequest()
        request.ItemToMonitor = ua.ReadValueId()
        request.ItemToMonitor.NodeId = ua.NodeId.from_string(address.node)
        request.ItemToMonitor.AttributeId = ua.AttributeIds.Value
        request.MonitoringMode = ua.MonitoringMode.Reporting
        request.RequestedParameters = params
        return request

    async def _consume(self, sub: Any, on_readings: OnReadings) -> None:
        loop = asyncio.get_running_loop()
        points = self.profile.points
        flush_scheduled = False

        def flush_later() -> None:
            # one delivery per burst: a publish of 10,000 changes is one list, not 10,000
            nonlocal flush_scheduled
            if not flush_scheduled:
                flush_scheduled = True
                loop.call_soon(flush)

        def flush() -> None:
            nonlocal flush_scheduled
            flush_scheduled = False
            batch, self._pending = self._pending, []
            if batch:
                on_readings(batch)

        try:
            await self._events(sub, points, flush_later)
        finally:
            flush()  # now, before the caller learns the session ended

    async def _events(self, sub: Any, points: list, flush_later: Any) -> None:
        async for event in sub:
            if isinstance(event, DataChangeEvent):
                item = event.data.monitored_item
                point = points[item.ClientHandle - 1]
                dv = item.Value
                self._pending.append(self._reading(point, dv, int(time.time() * 1000)))
                flush_later()
            elif isinstance(event, StatusChangeEvent) and not event.notification.Status.is_good():
                if not self._lost.done():  # type: ignore[union-attr]
                    self._lost.set_result(ConnectionError(event.notification.Status.name))  # type: ignore[union-attr]
                return

    async def _poll_forever(self, on_readings: OnReadings) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            on_readings(await self.read())
            next_at = max(next_at + self.poll_interval_s, loop.time())
            await asyncio.sleep(next_at - loop.time())

    async def _end_on_loss(self, sub: Any) -> None:
        assert self._lost is not None
        await asyncio.shield(self._lost)
        # delete() always ends the iterator in _consume, even when the server is gone
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sub.delete(), 2.0)

    # -- writing ------------------------------------------------------------------------------
    async def _variant_type(self, point: OpcUaPoint) -> ua.VariantType:
        node = point.address.node
        if node not in self._vtypes:
            client = self._require()
            try:
                self._vtypes[node] = await client.get_node(node).read_data_type_as_variant_type()
            except (*_TRANSPORT_ERRORS, ua.UaError) as err:
                raise _translate(err, f"data type of {point.name}") from err
        return self._vtypes[node]

    async def write(self, point_name: str, value: Value) -> Value:
        point = self.profile.point(point_name)
        assert isinstance(point, OpcUaPoint)
        client = self._require()
        vtype = await self._variant_type(point)
        raw = value if isinstance(value, bool | str) else point.to_raw(value)
        node = client.get_node(point.address.node)
        try:
            await node.write_value(ua.DataValue(ua.Variant(variant_value(raw, vtype), vtype)))
        except (*_TRANSPORT_ERRORS, ua.UaError) as err:
            raise _translate(err, f"write {point.name} on {self._where()}") from err
        return await self.read_point(point)

    async def read_point(self, point: OpcUaPoint) -> Value:
        client = self._require()
        try:
            dv = await client.get_node(point.address.node).read_data_value(
                raise_on_bad_status=False)
        except (*_TRANSPORT_ERRORS, ua.UaError) as err:
            raise _translate(err, f"read back {point.name} on {self._where()}") from err
        reading = self._reading(point, dv, int(time.time() * 1000))
        if reading.value is None:
            raise DeviceRejected(f"read-back of {point.name}: quality {reading.quality.value}")
        return reading.value

    async def call(self, method: Method, args: dict[str, Value]) -> Value | None:
        """Call the server's method with typed arguments; read back what it changes."""
        if method.call is None:
            readback: Value | None = None
            for point, value in method_values(method, args):
                readback = await self.write(point, value)
            return readback
        client = self._require()
        variants = [ua.Variant(variant_value(args[a.name], VARIANT_OF[a.data_type]),
                               VARIANT_OF[a.data_type]) for a in method.args]
        try:
            output = await client.get_node(method.call.object).call_method(
                ua.NodeId.from_string(method.call.method), *variants)
        except (*_TRANSPORT_ERRORS, ua.UaError) as err:
            raise _translate(err, f"call {method.name} on {self._where()}") from err
        readback = None
        for write in method.writes:
            readback = await self.read_point(self.profile.point(write.point))  # type: ignore[arg-type]
        if readback is None and isinstance(output, bool | int | float | str):
            readback = output
        return readback

    async def browse(self, root: str = "i=85", depth: int = 4) -> list[dict[str, Any]]:
        """Variables under `root` (Objects by default): node id, browse name, data type."""
        client = self._require()
        found: list[dict[str, Any]] = []

        async def walk(node: Any, level: int) -> None:
            for child in await node.get_children():
                cls = await child.read_node_class()
                name = (await child.read_browse_name()).Name
                if cls == ua.NodeClass.Variable:
                    vtype = await child.read_data_type_as_variant_type()
                    found.append({"node": child.nodeid.to_string(), "name": name,
                                  "data_type": vtype.name})
                elif cls == ua.NodeClass.Object and level < depth:
                    await walk(child, level + 1)

        try:
            await walk(client.get_node(root), 1)
        except (*_TRANSPORT_ERRORS, ua.UaError) as err:
            raise _translate(err, f"browse {self._where()}") from err
        return found
