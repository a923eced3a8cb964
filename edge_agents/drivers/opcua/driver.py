"""OPC-UA driver; asyncua is imported only in this folder (driver, session, subscription,
calls, codec).

Subscriptions are created with monitored items in batches (`batch_size` per request), so a
server that caps one CreateMonitoredItems request still takes thousands of nodes. We do not
use asyncua's own auto-reconnect: on any loss the session is dropped and the agent's device
runner reconnects with its capped backoff, creating a new session and every monitored item
again, so a server restart always ends with a live subscription, never a silent one.
Sessions (session.py) ask for `session_timeout_s`, and one a previous run left open is taken
back and closed.
Writes use the node's own data type: an Int32 node is written as an Int32 Variant.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

from asyncua import Client, ua

from cityops.errors import DeviceError, DeviceRejected, DeviceUnreachable
from cityops.wire import Quality, Value
from edge_agents.commands import same_value
from edge_agents.driver import OnReadings, method_values
from edge_agents.drivers.opcua import calls, session, subscription
from edge_agents.drivers.opcua.codec import NodeIds, quality_of, translate, variant_value
from edge_agents.drivers.opcua.config import OpcUaEndpoint
from edge_agents.points import Method, OpcUaPoint, OpcUaProfile, Reading

log = logging.getLogger(__name__)

_TRANSPORT_ERRORS = (ConnectionError, OSError, TimeoutError, asyncio.TimeoutError)
READ_CHUNK = 1000


class OpcUaDriver:
    def __init__(
        self, device: str, profile: OpcUaProfile, endpoint: OpcUaEndpoint, timeout_s: float = 4.0,
        poll_interval_s: float = 1.0, session_file: Path | None = None,
    ) -> None:
        self.device, self.profile, self.endpoint = device, profile, endpoint
        self.session_file = session_file
        self.timeout_s, self.poll_interval_s = timeout_s, poll_interval_s
        self.polling_fallback = False
        self._client: Client | None = None
        self._lost: asyncio.Future[Exception] | None = None
        self._nodes = NodeIds([])
        self._vtypes: dict[str, ua.VariantType] = {}
        self._signatures: dict[str, calls.Signature] = {}
        self.items_created = 0

    @property
    def pushes(self) -> bool:
        return self.endpoint.mode == "subscribe"

    def _where(self) -> str:
        return f"{self.device} at {self.endpoint.url}"

    async def connect(self) -> None:
        await self.close()
        client, resumed = await self._open()
        if resumed:
            # the session a previous run could not close (kill -9, power loss) is ours again:
            # close it with its subscriptions now, rather than let it hold a slot until its
            # timeout, and start a clean one
            log.info("device %s: closed the session a previous run left open", self.device)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 2.0)
            client, _ = await self._open()
        self._client = client
        self._vtypes.clear()
        self._signatures.clear()

    async def _open(self) -> tuple[Client, bool]:
        """A connected client, and whether it resumed the session saved by a previous run."""
        ep = self.endpoint
        client = session.new_client(ep, self.timeout_s, self.session_file)
        saved = session.saved_token(self.session_file)
        self._lost = lost = asyncio.get_running_loop().create_future()

        async def on_lost(exc: Exception) -> None:
            if not lost.done():
                lost.set_result(exc)

        client.connection_lost_callback = on_lost
        try:
            if ep.security_policy != "None":
                await session.secure(client, ep)
            await asyncio.wait_for(client.connect(auto_reconnect=False), self.timeout_s * 2)
            self._nodes = NodeIds(await client.get_namespace_array())
            self._nodes.check(self._node_texts())
        except (*_TRANSPORT_ERRORS, ua.UaError, DeviceError, AssertionError) as err:
            # AssertionError: asyncua's answer to a ServiceFault in place of the
            # OpenSecureChannelResponse (session.connect_error says what it means)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 2.0)
            raise session.connect_error(err, self._where(), ep) from err
        token = client.uaclient.session.authentication_token
        return client, saved is not None and token.to_string() == saved

    def _node_texts(self) -> list[str]:
        texts = [p.address.node for p in self.profile.points]
        for method in self.profile.methods:
            if method.call is not None:
                texts += [method.call.object, method.call.method]
        return texts

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
                values = await client.read_attributes([client.get_node(self._nodes(p.address.node))
                                                       for p in chunk])
            except (*_TRANSPORT_ERRORS, ua.UaError) as err:
                raise translate(err, f"read from {self._where()}") from err
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
            created, failed = await subscription.create_items(
                sub, self.device, self.profile.points, ep, self._nodes)
        except ua.UaStatusCodeError as err:
            # the server refuses subscriptions (unsupported, too many): poll it instead
            if not self.polling_fallback:
                log.warning("device %s: subscription refused (%s): polling every %s s",
                            self.device, err, self.poll_interval_s)
            self.polling_fallback = True
            await self._poll_forever(on_readings)
            return
        except (*_TRANSPORT_ERRORS, ua.UaError) as err:
            raise translate(err, f"subscribe on {self._where()}") from err
        self.items_created += created
        if failed:
            on_readings(failed)
        watchdog = asyncio.create_task(subscription.end_on_loss(sub, self._lost))
        try:
            await subscription.consume(sub, self.profile.points, self._reading, on_readings,
                                       self._lost)
        finally:
            watchdog.cancel()
        reason = self._lost.result() if self._lost.done() else "subscription closed"
        raise DeviceUnreachable(f"{self._where()}: session lost: {reason!r}")

    async def _poll_forever(self, on_readings: OnReadings) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            on_readings(await self.read())
            next_at = max(next_at + self.poll_interval_s, loop.time())
            await asyncio.sleep(next_at - loop.time())

    # -- writing ------------------------------------------------------------------------------
    async def _variant_type(self, point: OpcUaPoint) -> ua.VariantType:
        node = point.address.node
        if node not in self._vtypes:
            client = self._require()
            target = client.get_node(self._nodes(node))
            try:
                vtype = await target.read_data_type_as_variant_type()
                rank = await target.read_value_rank()
            except (*_TRANSPORT_ERRORS, ua.UaError) as err:
                raise translate(err, f"data type of {point.name}") from err
            if rank >= 0:  # node-opcua lets a scalar replace an array node's value
                raise DeviceRejected(f"point {point.name}: node {node} holds an array of "
                                     f"{vtype.name} (ValueRank {rank}); the agent writes "
                                     "scalars only")
            self._vtypes[node] = vtype
        return self._vtypes[node]

    async def write(self, point_name: str, value: Value) -> Value:
        point = self.profile.point(point_name)
        assert isinstance(point, OpcUaPoint)
        client = self._require()
        vtype = await self._variant_type(point)
        raw = value if isinstance(value, bool | str) else point.to_raw(value)
        node = client.get_node(self._nodes(point.address.node))
        try:
            await node.write_value(ua.DataValue(ua.Variant(variant_value(raw, vtype), vtype)))
        except (*_TRANSPORT_ERRORS, ua.UaError) as err:
            raise translate(err, f"write {point.name} on {self._where()}") from err
        return await self.read_point(point)

    async def read_point(self, point: OpcUaPoint) -> Value:
        client = self._require()
        try:
            dv = await client.get_node(self._nodes(point.address.node)).read_data_value(
                raise_on_bad_status=False)
        except (*_TRANSPORT_ERRORS, ua.UaError) as err:
            raise translate(err, f"read back {point.name} on {self._where()}") from err
        reading = self._reading(point, dv, int(time.time() * 1000))
        if reading.value is None:
            raise DeviceRejected(f"read-back of {point.name}: quality {reading.quality.value}")
        return reading.value

    async def call(self, method: Method, args: dict[str, Value]) -> Value | None:
        """Perform a profile method; its read-back, or its one output when it writes nothing.
        DeviceRejected when the server or the device's answer says it failed, or when what the
        method changes does not read back as the arguments say."""
        if method.call is None:
            readback: Value | None = None
            for point_name, value in method_values(method, args):
                readback = await self.write(point_name, value)
                # every step checked, not only the last one the command result shows
                if not same_value(value, readback, self._tolerance(point_name)):
                    raise DeviceRejected(f"method {method.name}: {point_name} reads "
                                         f"{readback!r} after the write, not {value!r}")
            return readback
        client = self._require()
        try:
            sig = await self._signature(client, method)
            variants = calls.input_variants(method, args, sig)
            result = await calls.call(client, self._nodes, method, variants)
        except (*_TRANSPORT_ERRORS, ua.UaError) as err:
            raise translate(err, f"call {method.name} on {self._where()}") from err
        outputs = calls.check_result(method, sig, result)
        readback = None
        for point_name, expected in method_values(method, args):
            readback = await self._confirm(method, point_name, expected)
        if readback is None and len(outputs) == 1 and isinstance(outputs[0], bool | int | float
                                                                  | str):
            readback = outputs[0]
        return readback

    async def _signature(self, client: Client, method: Method) -> calls.Signature:
        assert method.call is not None
        key = method.call.method
        if key not in self._signatures:
            self._signatures[key] = await calls.read_signature(client, self._nodes(key))
        return self._signatures[key]

    async def _confirm(self, method: Method, point_name: str, expected: Value) -> Value:
        point = self.profile.point(point_name)
        assert isinstance(point, OpcUaPoint)
        tolerance = self._tolerance(point_name)
        value = await calls.confirm(lambda: self.read_point(point),
                                    lambda want, got: same_value(want, got, tolerance),
                                    expected, self.timeout_s)
        if not same_value(expected, value, tolerance):
            raise DeviceRejected(f"method {method.name}: {point_name} reads {value!r} after the "
                                 f"call, not {expected!r}")
        return value

    def _tolerance(self, point_name: str) -> float:
        # as the command path compares a write's read-back: half a scale step
        point = self.profile.point(point_name)
        return abs(point.scale) / 2 if point.data_type.is_numeric else 0.0

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
            await walk(client.get_node(self._nodes(root)), 1)
        except (*_TRANSPORT_ERRORS, ua.UaError) as err:
            raise translate(err, f"browse {self._where()}") from err
        return found
