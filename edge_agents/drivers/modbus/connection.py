"""The Modbus TCP connection the driver's devices share; the only pymodbus client import.

Many devices answer one request at a time, and several unit ids often sit behind one gateway
connection: so one ModbusConnection per host:port, shared by its devices, holding a lock
around every request. A poll holds the lock for all of its requests, and a command for its
write and read-back: the lock is FIFO, so a command waits for the poll in progress, runs
before the next one, and never interleaves with either.
"""

from __future__ import annotations

import asyncio

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from cityops.errors import DeviceRejected, DeviceUnreachable
from edge_agents.drivers.modbus.responses import LEAN_RESPONSES

EXCEPTION_NAMES = {
    1: "illegal function", 2: "illegal data address", 3: "illegal data value",
    4: "server device failure", 5: "acknowledge", 6: "server device busy",
    10: "gateway path unavailable", 11: "gateway target failed to respond",
}


class ModbusConnection:
    """One TCP connection, one request at a time, reconnecting on demand."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self._client: AsyncModbusTcpClient | None = None
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task | None = None
        self._deadline_held = False  # the owner keeps a deadline over all its requests
        self.requests = 0
        self.late_answers = 0  # answers dropped because their request was given up

    def exclusive(self, deadline_held: bool = False) -> _Hold:
        """Hold the connection for several requests (a whole poll, a write and its read-back).
        deadline_held: the holder keeps one deadline over all its requests (a poll does), so
        each request is bounded by pymodbus' own time-out alone, without a timer of ours."""
        return _Hold(self, deadline_held)

    def _where(self) -> str:
        return f"{self.host}:{self.port}"

    async def _connect(self) -> AsyncModbusTcpClient:
        self._drop()
        client = AsyncModbusTcpClient(
            self.host, port=self.port, timeout=self.timeout_s, retries=0, reconnect_delay=0,
            trace_packet=lambda sending, data: self._screen(client, sending, data),
        )
        for response in LEAN_RESPONSES:  # this client's decoder only (responses.py)
            client.register(response)
        try:
            ok = await asyncio.wait_for(client.connect(), self.timeout_s)
        except (TimeoutError, OSError, ModbusException) as err:
            client.close()
            raise DeviceUnreachable(f"cannot connect to {self._where()}: {err!r}") from err
        if not ok:
            client.close()
            raise DeviceUnreachable(f"cannot connect to {self._where()}")
        self._client = client
        return client

    def _screen(self, client: AsyncModbusTcpClient, sending: bool, data: bytes) -> bytes:
        """What pymodbus gets of the bytes that arrive. A request given up (cancelled, timed
        out) leaves pymodbus' answer future done for one loop turn before the error reaches
        call() and the connection is closed; an answer arriving in that turn is dropped here
        (pymodbus would log "received pdu without a corresponding request")."""
        if sending or not client.ctx.response_future.done():
            return data
        self.late_answers += 1
        return b""

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def call(self, method: str, unit_id: int, *args: object, **kwargs: object) -> object:
        """Run one request under the connection's lock; translate every failure."""
        if self._owner is asyncio.current_task():  # a poll's or command's own requests
            response = await self._request(method, unit_id, args, kwargs,
                                           None if self._deadline_held else self.backstop_s)
        else:
            async with self.exclusive():
                response = await self._request(method, unit_id, args, kwargs, self.backstop_s)
        if response.isError():  # type: ignore[attr-defined]
            code = getattr(response, "exception_code", 0)
            raise DeviceRejected(
                f"{method}{_at(args)} on unit {unit_id}: exception {code} "
                f"({EXCEPTION_NAMES.get(code, 'unknown')})",
                exception_code=code,
            )
        return response

    @property
    def backstop_s(self) -> float:
        """Our own deadline for one request, beside pymodbus' time-out (which ends a request
        that gets no answer): in case a request hangs inside pymodbus all the same."""
        return self.timeout_s + 0.5

    async def _request(self, method: str, unit_id: int, args: tuple, kwargs: dict,
                       deadline_s: float | None) -> object:
        client = self._client
        if client is None or not client.connected:  # connected: no coroutine per request
            client = await self._connect()
        self.requests += 1
        try:
            if deadline_s is None:  # under its holder's deadline (a poll's)
                response = await getattr(client, method)(*args, device_id=unit_id, **kwargs)
                return _unless_cancelled(response)
            # a deadline on this task, not wait_for's extra task per request
            async with asyncio.timeout(deadline_s):
                response = await getattr(client, method)(*args, device_id=unit_id, **kwargs)
                return _unless_cancelled(response)
        except (TimeoutError, OSError, ModbusException) as err:
            # the answer may still come, late: on this connection it could be taken for
            # the next request's (pymodbus' own server stamps it with the newest
            # transaction id), so the next request goes out on a fresh connection
            self._drop()
            raise DeviceUnreachable(
                f"{method}{_at(args)} on {self._where()} unit {unit_id} failed: {err!r}"
            ) from err
        except asyncio.CancelledError:
            self._drop()  # the caller gave up (agent stopping): same late-answer risk
            raise

    def close(self) -> None:
        self._drop()


class _Hold:
    """ModbusConnection.exclusive(): the connection's lock held by this task (again inside
    its own hold: nothing more). A class, not contextlib's generator wrapper, which cost
    about 3 us of the agent's CPU per poll (issue #21)."""

    __slots__ = ("_conn", "_deadline_held", "_nested")

    def __init__(self, conn: ModbusConnection, deadline_held: bool) -> None:
        self._conn, self._deadline_held, self._nested = conn, deadline_held, False

    async def __aenter__(self) -> None:
        conn, me = self._conn, asyncio.current_task()
        self._nested = conn._owner is me
        if not self._nested:
            await conn._lock.acquire()
            conn._owner, conn._deadline_held = me, self._deadline_held

    async def __aexit__(self, *_exc: object) -> None:
        if not self._nested:
            conn = self._conn
            conn._owner, conn._deadline_held = None, False
            conn._lock.release()


def _unless_cancelled(response: object) -> object:
    """The answer, unless this task was cancelled while it came: Python 3.11's wait_for (in
    pymodbus' execute) returns an answer that arrives with a cancel and drops the cancel, so a
    stopped device (or a poll past its deadline, whose timeout cancels) polled on. The count
    of cancels not yet handled tells (Task.cancelling)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
    return response


def _at(args: tuple) -> str:
    return f" at {args[0]}" if args else ""
