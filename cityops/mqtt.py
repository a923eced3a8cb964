"""The only paho-mqtt import: one MQTT v5 connection driven by the asyncio event loop.

paho is callback-based; we hand its socket to the event loop (add_reader/add_writer) instead
of running paho's own thread, so messages and PUBACKs arrive on the loop without locks.
One MqttConnection is one network session: when it drops, `closed` completes and the owner
opens a new one. That keeps resend decisions with the caller (the agent's durable queue),
not hidden inside the client library.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cityops.errors import BrokerUnavailable, ConfigError
from cityops.tls import client_tls_context, service_tls_context  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes, int, int], None]
NO_MATCHING_SUBSCRIBERS = 16  # an MQTT v5 PUBACK reason code: accepted, but nobody took it
"""Called on the event loop with (topic, payload, mid, qos) for every message received."""


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parsed = urlparse(url)
        if parsed.scheme not in {"mqtt", "mqtts"} or not parsed.hostname:
            raise ConfigError(f"broker url {url!r} must look like mqtt://host:port")
        tls = parsed.scheme == "mqtts"
        return cls(parsed.hostname, parsed.port or (8883 if tls else 1883), tls)


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class MqttConnection:
    """One MQTT v5 session to a broker. Create, `await connect()`, use, `await close()`."""

    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        clean_start: bool = True,
        session_expiry_s: int = 0,
        will: Will | None = None,
        manual_ack: bool = False,
        on_message: MessageHandler | None = None,
        keepalive_s: int = 30,
        max_inflight: int = 1000,
        receive_maximum: int | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.address = BrokerAddress.parse(url)
        self._clean_start = clean_start
        self._session_expiry_s = session_expiry_s
        self._keepalive_s = keepalive_s
        # with manual acks, the broker stops sending once this many messages are unacknowledged:
        # that is the back-pressure between a slow database and a fast broker
        self._receive_maximum = receive_maximum
        self._on_message = on_message
        self._client = paho.Client(
            callback_api_version=paho.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
            reconnect_on_failure=False,
            manual_ack=manual_ack,
        )
        self._client.max_inflight_messages_set(max_inflight)
        self._client.max_queued_messages_set(0)
        if username:
            self._client.username_pw_set(username, password)
        if self.address.tls:
            self._client.tls_set_context(tls_context or ssl.create_default_context())
        if will:
            self._client.will_set(will.topic, will.payload, will.qos, will.retain)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[str] | None = None
        self._pubacks: dict[int, asyncio.Future[int | None]] = {}
        self._subacks: dict[int, asyncio.Future[list[int]]] = {}
        self._misc_task: asyncio.Task[None] | None = None
        self._wire_callbacks()

    def _wire_callbacks(self) -> None:
        c = self._client
        c.on_socket_open = self._on_socket_open
        c.on_socket_close = self._on_socket_close
        c.on_socket_register_write = self._on_register_write
        c.on_socket_unregister_write = self._on_unregister_write
        c.on_connect = self._handle_connect
        c.on_disconnect = self._handle_disconnect
        c.on_publish = self._handle_publish
        c.on_subscribe = self._handle_subscribe
        c.on_unsubscribe = self._handle_subscribe
        c.on_message = self._handle_message

    # -- socket plumbing: paho may call these from the executor thread during connect
    def _threadsafe(self, fn: Callable[..., object], *args: object) -> None:
        assert self._loop is not None
        if threading.get_ident() == self._loop_thread:
            # on the loop already: act now, before paho closes the socket under us
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def _on_socket_open(self, client: paho.Client, _ud: object, sock: socket.socket) -> None:
        self._threadsafe(self._loop.add_reader, sock, client.loop_read)  # type: ignore[union-attr]
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)

    def _on_socket_close(self, _c: paho.Client, _ud: object, sock: socket.socket) -> None:
        self._threadsafe(self._loop.remove_reader, sock)  # type: ignore[union-attr]
        self._threadsafe(self._loop.remove_writer, sock)  # type: ignore[union-attr]

    def _on_register_write(self, client: paho.Client, _ud: object, sock: socket.socket) -> None:
        self._threadsafe(self._loop.add_writer, sock, client.loop_write)  # type: ignore[union-attr]

    def _on_unregister_write(self, _c: paho.Client, _ud: object, sock: socket.socket) -> None:
        self._threadsafe(self._loop.remove_writer, sock)  # type: ignore[union-attr]

    # -- protocol callbacks, always on the loop thread (called from loop_read)
    def _handle_connect(self, _c, _ud, _flags, reason_code, _props) -> None:
        if self._connected is None or self._connected.done():
            return
        if reason_code.is_failure:
            self._connected.set_exception(
                BrokerUnavailable(f"broker refused the connection: {reason_code}")
            )
        else:
            self._connected.set_result(None)

    def _handle_disconnect(self, _c, _ud, _flags, reason_code, _props) -> None:
        reason = str(reason_code)
        if self._connected is not None and not self._connected.done():
            self._connected.set_exception(BrokerUnavailable(f"disconnected: {reason}"))
        for fut in [*self._pubacks.values(), *self._subacks.values()]:
            if not fut.done():
                fut.set_exception(BrokerUnavailable(f"connection lost: {reason}"))
        self._pubacks.clear()
        self._subacks.clear()
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(reason)

    def _handle_publish(self, _c, _ud, mid: int, reason_code, _props) -> None:
        fut = self._pubacks.pop(mid, None)
        if fut is None or fut.done():
            return
        if reason_code.is_failure:
            fut.set_exception(BrokerUnavailable(f"broker refused publish: {reason_code}"))
        else:
            # 0, or NO_MATCHING_SUBSCRIBERS (16): the caller decides whether that is delivery
            fut.set_result(reason_code.value)

    def _handle_subscribe(self, _c, _ud, mid: int, reason_codes, _props) -> None:
        fut = self._subacks.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result([rc.value for rc in reason_codes])

    def _handle_message(self, _c, _ud, msg: paho.MQTTMessage) -> None:
        if self._on_message is not None:
            self._on_message(msg.topic, msg.payload, msg.mid, msg.qos)

    # -- public API
    async def connect(self, timeout_s: float = 10.0) -> None:
        """Open the session; raises BrokerUnavailable when the broker cannot be reached."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._connected = self._loop.create_future()
        self.closed = self._loop.create_future()
        props = Properties(PacketTypes.CONNECT)
        if self._session_expiry_s:
            props.SessionExpiryInterval = self._session_expiry_s
        if self._receive_maximum:
            props.ReceiveMaximum = self._receive_maximum
        try:
            await asyncio.wait_for(
                self._loop.run_in_executor(None, self._blocking_connect, props), timeout_s
            )
            await asyncio.wait_for(asyncio.shield(self._connected), timeout_s)
        except (OSError, TimeoutError, ValueError) as err:
            self._client.disconnect()
            raise BrokerUnavailable(
                f"cannot reach broker {self.address.host}:{self.address.port}: {err!r}"
            ) from err
        self._misc_task = asyncio.create_task(self._misc_loop())

    def _blocking_connect(self, props: Properties) -> None:
        self._client.connect(
            self.address.host,
            self.address.port,
            keepalive=self._keepalive_s,
            clean_start=self._clean_start,
            properties=props,
        )

    async def _misc_loop(self) -> None:
        # keepalive pings and broken-connection detection happen in paho's loop_misc
        while self.closed is not None and not self.closed.done():
            if self._client.loop_misc() != paho.MQTT_ERR_SUCCESS:
                self._handle_disconnect(None, None, None, _Lost(), None)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.closed), 1.0)

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[int | None]:
        """Queue a publish; the future completes on PUBACK (QoS 1), with the PUBACK's reason
        code (NO_MATCHING_SUBSCRIBERS included), or with None when written (QoS 0)."""
        assert self._loop is not None, "connect() first"
        fut: asyncio.Future[int | None] = self._loop.create_future()
        if self.closed is None or self.closed.done():
            fut.set_exception(BrokerUnavailable("not connected"))
            return fut
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            fut.set_exception(BrokerUnavailable(f"publish failed: {paho.error_string(info.rc)}"))
        elif info.is_published():
            fut.set_result(None)
        else:
            self._pubacks[info.mid] = fut
        return fut

    async def subscribe(self, topics: list[tuple[str, int]], timeout_s: float = 10.0) -> None:
        assert self._loop is not None, "connect() first"
        rc, mid = self._client.subscribe(topics)
        if rc != paho.MQTT_ERR_SUCCESS:
            raise BrokerUnavailable(f"subscribe failed: {paho.error_string(rc)}")
        fut = self._loop.create_future()
        self._subacks[mid] = fut
        codes = await asyncio.wait_for(fut, timeout_s)
        refused = [t for (t, _q), code in zip(topics, codes, strict=False) if code >= 0x80]
        if refused:
            raise BrokerUnavailable(f"broker refused subscription to {refused}")

    async def unsubscribe(self, topics: list[str], timeout_s: float = 5.0) -> None:
        assert self._loop is not None, "connect() first"
        rc, mid = self._client.unsubscribe(topics)
        if rc != paho.MQTT_ERR_SUCCESS:
            raise BrokerUnavailable(f"unsubscribe failed: {paho.error_string(rc)}")
        fut = self._loop.create_future()
        self._subacks[mid] = fut
        await asyncio.wait_for(fut, timeout_s)

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge a received message (only with manual_ack=True)."""
        self._client.ack(mid, qos)

    @property
    def is_connected(self) -> bool:
        return self.closed is not None and not self.closed.done()

    async def close(self, end_session: bool = False) -> None:
        """Disconnect; `end_session` also tells the broker to forget a persistent session."""
        if self.is_connected:
            props = None
            if end_session:
                props = Properties(PacketTypes.DISCONNECT)
                props.SessionExpiryInterval = 0
            self._client.disconnect(properties=props)
            # asyncio.wait neither cancels what it waits for nor swallows a cancellation of
            # the caller: a task cancelled while it closes must still end (suppressing
            # CancelledError here once left the API's reconnect loop running after shutdown)
            await asyncio.wait({self.closed}, timeout=2.0)  # type: ignore[arg-type]
        if self.closed is not None and not self.closed.done():
            self.closed.set_result("closed")
        if self._misc_task:
            self._misc_task.cancel()
            await asyncio.wait({self._misc_task})


class _Lost:
    def __str__(self) -> str:
        return "keepalive timeout"


async def probe_broker(url: str, username: str, password: str, timeout_s: float = 3.0,
                       tls_context: ssl.SSLContext | None = None) -> None:
    """Connect and disconnect once; raises BrokerUnavailable when the broker does not answer."""
    conn = MqttConnection(
        url, client_id=f"probe-{id(object())}", username=username, password=password,
        tls_context=tls_context,
    )
    try:
        await conn.connect(timeout_s)
    finally:
        await conn.close()
