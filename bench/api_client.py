"""The bench's HTTP client: keep-alive HTTP/1.1 GETs over asyncio streams, answers parsed by
httptools (uvicorn's own parser, installed with it) and counted, not kept.

Why not httpx: the client shares the machine's two cores with the API it measures, and
httpx spent ~1 ms of CPU per small request (its models, URL parsing, header objects), about
a third of what the API itself spent: flat out, the bench was measuring its own client. This
one does what wrk does (write the request bytes, read until the parser says the answer is
complete) in ~0.1 ms per small answer, so the API path's figures are the API's."""

from __future__ import annotations

import asyncio

import httptools


class _Answer:
    """httptools' callbacks for one answer: its size, when it is complete, and whether the
    server closes the connection after it (HTTP/1.1 keeps it unless it says `close`)."""

    __slots__ = ("closes", "complete", "size")

    def __init__(self) -> None:
        self.complete = self.closes = False
        self.size = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"connection" and value.lower() == b"close":
            self.closes = True

    def on_body(self, body: bytes) -> None:
        self.size += len(body)

    def on_message_complete(self) -> None:
        self.complete = True


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def get(self, request: bytes) -> tuple[int, bool]:
        """(status, whether the connection may be used again)."""
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        self.writer.write(request)
        while not answer.complete:
            data = await self.reader.read(262_144)
            if not data:
                raise ConnectionError("the server closed the connection mid-answer")
            parser.feed_data(data)
        # not parser.should_keep_alive(): once the answer is complete it says False for a
        # connection the server keeps, and every request paid a connect, an accept and a
        # close that the direct path's pooled connections do not (found by P22, issue #21)
        return parser.get_status_code(), not answer.closes

    def close(self) -> None:
        self.writer.close()


class LeanClient:
    """GETs to one host with fixed headers, over at most `max_connections` connections."""

    def __init__(self, host: str, port: int, headers: dict[str, str],
                 max_connections: int = 200) -> None:
        self.host, self.port = host, port
        self._head = "".join(f"{k}: {v}\r\n" for k, v in
                             ({"Host": f"{host}:{port}"} | headers).items()).encode()
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)

    async def get(self, path: str) -> int:
        """The answer's status; an OSError or ConnectionError when there was none."""
        request = b"GET " + path.encode() + b" HTTP/1.1\r\n" + self._head + b"\r\n"
        async with self._slots:
            while self._idle:  # a kept connection the server may have closed meanwhile
                conn = self._idle.pop()
                try:
                    return await self._on(conn, request)
                except (ConnectionError, OSError):
                    continue  # uvicorn closes one idle for 5 s: a new one, as a browser does
            conn = _Connection(*await asyncio.open_connection(self.host, self.port))
            return await self._on(conn, request)

    async def _on(self, conn: _Connection, request: bytes) -> int:
        try:
            status, reuse = await conn.get(request)
        except BaseException:
            conn.close()
            raise
        if reuse:
            self._idle.append(conn)
        else:
            conn.close()
        return status

    async def aclose(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
