"""api/http_writes.py: the writes of one loop turn leave as one, nothing waits past its turn,
a large body is not copied, close sends what waits; and through a real uvicorn on a
loopback port, answers over a kept-alive connection, a streamed answer and a large one
arrive whole and in order."""

from __future__ import annotations

import asyncio

import uvicorn

from api.http_writes import JOIN_MAX_BYTES, CoalescingHttpTools, CoalescingTransport
from tests.helpers import await_for


class _Socket:
    """A transport that records the writes that reach the socket."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_one_turns_writes_leave_as_one_and_large_bodies_uncopied() -> None:
    async def run() -> None:
        sock = _Socket()
        transport = CoalescingTransport(sock, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"{}")
        assert sock.writes == []  # not before the end of the turn
        await asyncio.sleep(0)
        assert sock.writes == [b"HTTP/1.1 200 OK\r\n\r\n{}"]
        big = b"x" * (JOIN_MAX_BYTES + 1)
        transport.write(b"head")
        transport.write(big)  # the head first, then the body as it is
        assert sock.writes[1:] == [b"head", big]
        transport.write(b"last")
        transport.close()  # what waits is sent before the socket closes
        assert sock.writes[-1] == b"last" and sock.closed
        await asyncio.sleep(0)  # the flush scheduled for that turn finds nothing left
        assert len(sock.writes) == 4
        assert transport.get_extra_info("peername") == "info:peername"
    asyncio.run(run())


async def _app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/stream":  # chunked, each chunk its own turn or more
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(3):
            await send({"type": "http.response.body", "body": f"chunk{i};".encode(),
                        "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b""})
        return
    body = b"y" * (200_000 if path == "/big" else 10)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _answer(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return head, body
            body += chunk[:-2]
    length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
    return head, await reader.readexactly(length)


def test_answers_through_uvicorn_whole_and_in_order() -> None:
    async def run() -> None:
        config = uvicorn.Config(_app, host="127.0.0.1", port=0, http=CoalescingHttpTools,
                                log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())

        async def started() -> bool:
            return server.started

        await await_for(started, timeout_s=10, what="uvicorn started")
        port = server.servers[0].sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for path, expected in (("/a", b"y" * 10), ("/stream", b"chunk0;chunk1;chunk2;"),
                                   ("/big", b"y" * 200_000), ("/b", b"y" * 10)):
                writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
                head, body = await asyncio.wait_for(_answer(reader), 10)
                assert head.startswith(b"HTTP/1.1 200 OK") and body == expected, path
        finally:
            writer.close()
            server.should_exit = True
            await serving
    asyncio.run(run())
