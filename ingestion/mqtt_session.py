"""A lean MQTT v5 session for the ingest worker, written on asyncio's Protocol.

Why not paho (cityops/mqtt.py)? Profiling the worker on single-reading messages showed about
half of its CPU in paho's per-message work (a Properties object per PUBLISH, topic matching,
one socket write per PUBACK). The worker needs only a small part of the protocol: CONNECT with
a persistent session and a Receive Maximum, SUBSCRIBE/UNSUBSCRIBE, PUBLISH in (QoS 0/1) with
manual PUBACKs, PUBLISH out at QoS 1 (alarm events), PING and DISCONNECT. Here a PUBLISH costs
a few slices of a buffer, and the PUBACKs of a whole batch leave in one write.

The receive window is enforced here too: Mosquitto 2.0.11 was measured sending 36 200
unacknowledged messages to a session that announced a Receive Maximum of 20 000 (it kept to
2000 when asked). So once `receive_maximum` messages are held unacknowledged, the session
stops reading its socket until acks bring it under three quarters of that; TCP then makes the
broker hold the rest. Memory stays bounded whatever the broker does.

Same interface as MqttConnection (connect, subscribe, unsubscribe, ack, publish, close,
closed, is_connected), so the worker can use either. QoS 2 is never requested. The broker may
not use topic aliases towards us: we do not announce a Topic Alias Maximum (default 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
import time
from collections.abc import Callable

from cityops.errors import BrokerUnavailable
from cityops.mqtt import BrokerAddress

MessageHandler = Callable[[str, bytes, int, int], None]

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14
_PROP_SESSION_EXPIRY, _PROP_RECEIVE_MAXIMUM = 0x11, 0x21
_U16 = struct.Struct(">H")


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_varint(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int] | None:
    """(value, position after it), or None if the buffer ends inside it."""
    value = shift = 0
    for i in range(pos, min(pos + 4, len(buf))):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i + 1
        shift += 7
    if len(buf) - pos >= 4:
        raise BrokerUnavailable("malformed remaining length from the broker")
    return None


def string(s: str | bytes) -> bytes:
    data = s.encode() if isinstance(s, str) else s
    return _U16.pack(len(data)) + data


def packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + varint(len(body)) + body


class LeanMqttSession(asyncio.Protocol):
    def __init__(
        self, url: str, *, client_id: str, username: str | None = None,
        password: str | None = None, clean_start: bool = True, session_expiry_s: int = 0,
        on_message: MessageHandler | None = None, receive_maximum: int | None = None,
        keepalive_s: int = 30, tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.address = BrokerAddress.parse(url)
        self.tls_context = tls_context
        self.client_id, self.username, self.password = client_id, username, password
        self.clean_start, self.session_expiry_s = clean_start, session_expiry_s
        self.receive_maximum, self.keepalive_s = receive_maximum, keepalive_s
        self.on_message = on_message
        self.closed: asyncio.Future[str] | None = None
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._connack: asyncio.Future[None] | None = None
        self._waiting: dict[tuple[int, int], asyncio.Future] = {}  # (kind, packet id)
        self._next_id = 0
        self._acks: list[bytes] = []
        self._held = 0  # QoS 1 messages delivered and not yet acknowledged
        self._window = receive_maximum or 65535
        self._paused = False
        self._last_rx = 0.0
        self._pinger: asyncio.Task[None] | None = None

    # -- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed(f"connection lost: {exc!r}" if exc else "connection closed")

    def data_received(self, data: bytes) -> None:
        self._last_rx = time.monotonic()
        buf = self._buf
        buf += data
        pos, end = 0, len(buf)
        while end - pos >= 2:
            header = read_varint(buf, pos + 1)
            if header is None:
                break
            length, start = header
            if end - start < length:
                break
            first = buf[pos]
            pos = start + length
            if first >> 4 == PUBLISH:
                self._publish_in(first, buf, start, pos)
            else:
                self._control(first >> 4, bytes(buf[start:pos]))
        del buf[:pos]

    # -- incoming packets --------------------------------------------------------------------
    def _publish_in(self, first: int, buf: bytearray, start: int, end: int) -> None:
        qos = (first >> 1) & 3
        topic_len = (buf[start] << 8) | buf[start + 1]
        pos = start + 2 + topic_len
        topic = buf[start + 2:pos].decode()
        mid = 0
        if qos:
            mid = (buf[pos] << 8) | buf[pos + 1]
            pos += 2
        props = read_varint(buf, pos)
        assert props is not None
        pos = props[1] + props[0]
        if self.on_message is not None:
            self.on_message(topic, bytes(buf[pos:end]), mid, qos)
        if qos:
            self._held += 1
            if self._held >= self._window and not self._paused and self._transport:
                self._paused = True
                self._transport.pause_reading()

    def _control(self, kind: int, body: bytes) -> None:
        if kind == CONNACK:
            self._resolve_connack(body)
        elif kind in (PUBACK, SUBACK, UNSUBACK):
            fut = self._waiting.pop((kind, _U16.unpack_from(body)[0]), None)
            if fut is not None and not fut.done():
                fut.set_result(body[2:])
        elif kind == DISCONNECT:
            self._closed(f"broker disconnected us (reason 0x{body[0] if body else 0:02x})")
            if self._transport is not None:
                self._transport.close()

    def _resolve_connack(self, body: bytes) -> None:
        fut = self._connack
        if fut is None or fut.done():
            return
        if len(body) < 2 or body[1] >= 0x80:
            code = body[1] if len(body) > 1 else -1
            fut.set_exception(BrokerUnavailable(f"broker refused the connection: 0x{code:02x}"))
        else:
            fut.set_result(None)

    def _closed(self, reason: str) -> None:
        for fut in [self._connack, *self._waiting.values()]:
            if fut is not None and not fut.done():
                fut.set_exception(BrokerUnavailable(reason))
                fut.exception()  # marked as seen: nobody may be waiting (a failed connect)
        self._waiting.clear()
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(reason)

    # -- public API (as MqttConnection) --------------------------------------------------------
    async def connect(self, timeout_s: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        self.closed, self._connack = loop.create_future(), loop.create_future()
        tls = (self.tls_context or ssl.create_default_context()) if self.address.tls else None
        try:
            await asyncio.wait_for(loop.create_connection(
                lambda: self, self.address.host, self.address.port, ssl=tls), timeout_s)
            self._send(self._connect_packet())
            await asyncio.wait_for(asyncio.shield(self._connack), timeout_s)
        except (OSError, TimeoutError) as err:
            await self.close()
            raise BrokerUnavailable(
                f"cannot reach broker {self.address.host}:{self.address.port}: {err!r}"
            ) from err
        self._pinger = asyncio.create_task(self._keepalive())

    def _connect_packet(self) -> bytes:
        flags = 0x02 if self.clean_start else 0
        props = b""
        if self.session_expiry_s:
            props += bytes([_PROP_SESSION_EXPIRY]) + struct.pack(">I", self.session_expiry_s)
        if self.receive_maximum:
            props += bytes([_PROP_RECEIVE_MAXIMUM]) + _U16.pack(self.receive_maximum)
        payload = string(self.client_id)
        if self.username:
            flags |= 0x80
            payload += string(self.username)
            if self.password is not None:
                flags |= 0x40
                payload += string(self.password.encode())
        head = string("MQTT") + bytes([5, flags]) + _U16.pack(self.keepalive_s)
        return packet(CONNECT, 0, head + varint(len(props)) + props + payload)

    async def _keepalive(self) -> None:
        interval = max(1.0, self.keepalive_s / 2)
        while self.is_connected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.closed), interval)  # type: ignore
            if not self.is_connected:
                return
            if not self._paused and time.monotonic() - self._last_rx > self.keepalive_s * 1.5:
                self._closed("keepalive timeout")
                if self._transport is not None:
                    self._transport.abort()
                return
            self._send(packet(PINGREQ, 0, b""))

    @property
    def is_connected(self) -> bool:
        return self.closed is not None and not self.closed.done()

    def _send(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            raise BrokerUnavailable("not connected")
        self._transport.write(data)

    def _packet_id(self, _kind: int) -> int:
        # one identifier space for PUBLISH, SUBSCRIBE and UNSUBSCRIBE in flight
        busy = {pid for _k, pid in self._waiting}
        for _ in range(65535):
            self._next_id = self._next_id % 65535 + 1
            if self._next_id not in busy:
                return self._next_id
        raise BrokerUnavailable("no free packet identifier")

    async def _request(self, kind: int, reply: int, flags: int, body: Callable[[int], bytes],
                       timeout_s: float) -> bytes:
        if not self.is_connected:
            raise BrokerUnavailable("not connected")
        pid = self._packet_id(reply)
        fut = asyncio.get_running_loop().create_future()
        self._waiting[(reply, pid)] = fut
        self._send(packet(kind, flags, _U16.pack(pid) + body(pid)))
        return await asyncio.wait_for(fut, timeout_s)

    async def subscribe(self, topics: list[tuple[str, int]], timeout_s: float = 10.0) -> None:
        body = b"\x00" + b"".join(string(t) + bytes([q]) for t, q in topics)
        codes = await self._request(SUBSCRIBE, SUBACK, 2, lambda _pid: body, timeout_s)
        rest = read_varint(codes, 0)
        assert rest is not None
        refused = [t for (t, _q), c in zip(topics, codes[rest[1] + rest[0]:], strict=False)
                   if c >= 0x80]
        if refused:
            raise BrokerUnavailable(f"broker refused subscription to {refused}")

    async def unsubscribe(self, topics: list[str], timeout_s: float = 5.0) -> None:
        body = b"\x00" + b"".join(string(t) for t in topics)
        await self._request(UNSUBSCRIBE, UNSUBACK, 2, lambda _pid: body, timeout_s)

    def publish(self, topic: str, payload: bytes, qos: int = 1,
                retain: bool = False) -> asyncio.Future[None]:
        """QoS 1: the future completes on PUBACK (QoS 0: when written)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        flags = (qos << 1) | int(retain)
        try:
            if qos == 0:
                self._send(packet(PUBLISH, flags, string(topic) + b"\x00" + payload))
                done.set_result(None)
                return done
            pid = self._packet_id(PUBACK)
            ack = loop.create_future()
            self._waiting[(PUBACK, pid)] = ack
            self._send(packet(PUBLISH, flags, string(topic) + _U16.pack(pid) + b"\x00" + payload))
        except BrokerUnavailable as err:
            done.set_exception(err)
            return done

        def settle(fut: asyncio.Future) -> None:
            if done.done():
                return
            if fut.exception() is not None:
                done.set_exception(fut.exception())  # type: ignore[arg-type]
            elif fut.result()[:1] and fut.result()[0] >= 0x80:
                done.set_exception(BrokerUnavailable(f"publish refused: {fut.result()[0]:#x}"))
            else:
                done.set_result(None)

        ack.add_done_callback(settle)
        return done

    def ack(self, mid: int, qos: int) -> None:
        """PUBACK a received message; acks of one batch are sent together on the next tick."""
        if qos != 1:
            return
        if not self._acks:
            asyncio.get_running_loop().call_soon(self._flush_acks)
        self._acks.append(b"\x40\x02" + _U16.pack(mid))
        self._held -= 1
        if self._paused and self._held < self._window * 3 // 4:
            self._paused = False
            if self._transport is not None and not self._transport.is_closing():
                self._transport.resume_reading()

    def _flush_acks(self) -> None:
        acks, self._acks = self._acks, []
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(acks))

    async def close(self, end_session: bool = False) -> None:
        """Disconnect; `end_session` also tells the broker to forget a persistent session."""
        if self._acks:
            self._flush_acks()
        if self.is_connected and self._transport is not None:
            props = bytes([_PROP_SESSION_EXPIRY]) + b"\x00" * 4 if end_session else b""
            self._transport.write(packet(DISCONNECT, 0, b"\x00" + varint(len(props)) + props))
            self._transport.close()
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self.closed), 2.0)  # type: ignore
        elif self._transport is not None:
            self._transport.abort()
        self._closed("closed")
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinger
