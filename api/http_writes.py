"""uvicorn's httptools protocol with an answer's writes sent together (issue #21).

uvicorn writes an answer's status line and headers, then its body, as two socket writes:
two system calls and two TCP segments, and on loopback the first wakes the client before the
body is there. Here the writes made in one turn of the event loop are joined and sent at
the end of that turn: a small answer leaves in one write. Measured with keep-alive
connections flat out on one device's latest: ~8 % less API CPU per request and ~12 % more
answers per second (docs/api.md). Nothing is held past the loop turn it was written in: a
streamed answer (Server-Sent Events) still leaves chunk by chunk, each at most a turn later.
A large body is not copied to be joined: what is waiting goes first, then the body as is.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

JOIN_MAX_BYTES = 64 * 1024  # past this, joining would copy more than a write costs


class CoalescingTransport:
    """A transport whose writes of one loop turn are sent as one at the end of the turn."""

    __slots__ = ("_loop", "_transport", "_waiting", "_waiting_bytes")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._waiting: list[bytes] = []
        self._waiting_bytes = 0

    def write(self, data: bytes) -> None:
        if self._waiting_bytes + len(data) > JOIN_MAX_BYTES:
            self.flush()
            self._transport.write(data)
            return
        if not self._waiting:
            self._loop.call_soon(self.flush)
        self._waiting.append(data)
        self._waiting_bytes += len(data)

    def flush(self) -> None:
        if not self._waiting:
            return
        data = self._waiting[0] if len(self._waiting) == 1 else b"".join(self._waiting)
        self._waiting.clear()
        self._waiting_bytes = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    @property
    def raw(self) -> asyncio.Transport:
        return self._transport

    def __getattr__(self, name: str) -> Any:  # pause_reading, is_closing, get_extra_info...
        return getattr(self._transport, name)


class CoalescingHttpTools(HttpToolsProtocol):
    """`uvicorn.run(..., http=CoalescingHttpTools)` (cli/main.py)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]

    def handle_websocket_upgrade(self) -> None:
        # the WebSocket protocol gets the socket's own transport, what waited sent first
        if isinstance(self.transport, CoalescingTransport):
            self.transport.flush()
            self.transport = self.transport.raw
        super().handle_websocket_upgrade()
