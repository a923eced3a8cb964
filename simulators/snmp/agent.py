"""An SNMPv2c agent simulating an SNMP profile: GET, GETNEXT and GETBULK over UDP, values from
the profile's `simulate` (docs/profiles.md), so the driver can be tested where no real device
or Net-SNMP MIB module offers the points (UPS-MIB, BGP, PoE, sensors).

How points are served:
- a scalar answers its `simulate` value (raw: engineering / scale); a bool with `equals`
  answers `equals` when true and another value when false; a string answers a fixed text;
  where two points read one OID (battery_status and battery_low), the first one decides;
- a rate point is a counter growing at its simulated rate: Counter64 when the point has a
  32-bit `fallback` (an HC counter), Counter32 otherwise; the fallback OID answers the same
  count modulo 2**32. `counter_start` is where every count starts: 2**32 - 5000 makes the
  32-bit counters wrap within seconds (the 64-bit ones are far from theirs);
- a walked column with no rows from the points above gets two rows whose reduction is the
  point's simulated value (the `where` columns answer their `equals` there; `count` gives 2);
- sysUpTime counts from the simulator's start; `restart()` starts it, and every counter, again.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto.api import v2c

from edge_agents.points import DataType, SnmpPoint, SnmpProfile
from simulators.values import simulated_value

log = logging.getLogger(__name__)

SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
Make = Callable[[float], Any]  # seconds since start -> a pysnmp value


def _oid(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


class SnmpSimulator:
    def __init__(self, profile: SnmpProfile, community: str = "public",
                 counter_start: int = 0) -> None:
        self.profile, self.community = profile, community
        self.counter_start = counter_start
        self.started = time.monotonic()
        self.overrides: dict[str, float] = {}  # point -> a value set by a test
        self.refused: set[str] = set()  # OIDs a GET is answered genErr for, as a test says
        self.requests = 0
        self._values: dict[tuple[int, ...], Make] = {SYS_UPTIME: self._uptime}
        self._counters: dict[str, tuple[float, float]] = {}  # point -> (count, at)
        for point in profile.points:
            if point.address.oid is not None:
                self._add_scalar(point)
        for point in profile.points:
            if point.address.walk is not None:
                self._add_walked(point)
        self._order = sorted(self._values)

    def restart(self) -> None:
        """As an agent restart: uptime and every counter start again."""
        self.started = time.monotonic()
        self._counters.clear()

    def clear_counters(self) -> None:
        """As an operator's "clear counters" on a switch: counters start again, uptime runs on
        (a Counter64 that falls without a restart: the driver refuses that poll's rate)."""
        self._counters.clear()

    # -- values ------------------------------------------------------------------------------
    def _uptime(self, t: float) -> Any:
        return v2c.TimeTicks(int(t * 100) % 2**32)

    def _number(self, point: SnmpPoint, t: float) -> float:
        if point.name in self.overrides:
            return self.overrides[point.name]
        sim = point.simulate
        return simulated_value(sim, t, None) if sim is not None else 1.0

    def _add_scalar(self, point: SnmpPoint) -> None:
        address = point.address
        key = _oid(address.oid or "")
        if key in self._values:
            return  # another point reads this OID too (battery_low, battery_status): first wins
        if address.rate:
            wide = address.fallback is not None
            self._values[key] = lambda t: self._counter(point, t, 64 if wide else 32)
            if wide:
                self._values[_oid(address.fallback or "")] = lambda t: self._counter(point, t, 32)
        elif address.equals is not None:
            self._values[key] = lambda t: v2c.Integer(
                address.equals if self._number(point, t) >= 0.5 else address.equals + 1)
        elif point.data_type is DataType.STRING:
            text = f"{point.name.split('.')[0]}"
            self._values[key] = lambda t: v2c.OctetString(text)
        elif key != SYS_UPTIME:
            self._values[key] = lambda t: self._raw(point, t)

    def _raw(self, point: SnmpPoint, t: float) -> Any:
        raw = round(self._number(point, t) / point.scale)
        if point.data_type.value.startswith("uint") and raw >= 0 and point.choices is None:
            return v2c.Gauge32(min(raw, 2**32 - 1))
        return v2c.Integer(raw)

    def _counter(self, point: SnmpPoint, t: float, bits: int) -> Any:
        count, at = self._counters.get(point.name, (float(self.counter_start), t))
        count += max(0.0, self._number(point, t)) / point.scale * (t - at)
        self._counters[point.name] = (count, t)
        if bits == 32:
            return v2c.Counter32(int(count) % 2**32)
        return v2c.Counter64(int(count) % 2**64)

    def _add_walked(self, point: SnmpPoint) -> None:
        address = point.address
        column = _oid(address.walk or "")
        if address.index_at is not None and address.row is not None:  # one row (LLDP)
            self._values[(*column, *_instance(address.row, address.index_at))] = (
                lambda t: self._text_or_raw(point, t))
            return
        if any(k[:len(column)] == column for k in self._values):
            return  # the column is served by table points already (ifOperStatus)
        for row in (1, 2):
            for where in address.where:
                value = where.equals
                make = (v2c.ObjectIdentifier(value) if isinstance(value, str) and "." in value
                        else v2c.Integer(int(value)))
                self._values[(*_oid(where.oid), row)] = lambda t, m=make: m
            if address.per is not None:
                self._values[(*_oid(address.per), row)] = lambda t: v2c.Integer(1000)
            self._values[(*column, row)] = lambda t, r=row: self._walked(point, t, r)

    def _text_or_raw(self, point: SnmpPoint, t: float) -> Any:
        if point.data_type is DataType.STRING:
            return v2c.OctetString(f"peer-of-{point.name.split('.')[0]}")
        return self._raw(point, t)

    def _walked(self, point: SnmpPoint, t: float, row: int) -> Any:
        value = self._number(point, t) / point.scale
        reduce = point.address.reduce
        if reduce == "sum":
            value /= 2
        elif reduce == "ratio":
            value *= 1000
        elif reduce == "count":  # every row counts whatever its value; where decides
            return v2c.Integer(6)
        return v2c.Integer(round(value))

    # -- protocol ----------------------------------------------------------------------------
    def answer(self, data: bytes) -> bytes | None:
        """The response to one request datagram, or None when it is not for us."""
        try:
            message, _rest = decoder.decode(data, asn1Spec=v2c.Message())
        except Exception:  # not SNMPv2c: a real agent ignores it too
            return None
        if str(v2c.apiMessage.get_community(message)) != self.community:
            return None
        request = v2c.apiMessage.get_pdu(message)
        response = v2c.apiPDU.get_response(request)
        t = time.monotonic() - self.started
        if request.isSameTypeWith(v2c.GetRequestPDU()):
            asked = [o for o, _ in v2c.apiPDU.get_varbinds(request)]
            binds = [(o, self._get(tuple(o), t)) for o in asked]
            for index, oid in enumerate(asked, 1):
                if str(oid) in self.refused:  # genErr at the first refused OID, as agents do
                    v2c.apiPDU.set_error_status(response, 5)
                    v2c.apiPDU.set_error_index(response, index)
                    binds = [(o, v2c.null) for o in asked]
                    break
        elif request.isSameTypeWith(v2c.GetNextRequestPDU()):
            binds = [self._next(tuple(o), t) for o, _ in v2c.apiPDU.get_varbinds(request)]
        elif request.isSameTypeWith(v2c.GetBulkRequestPDU()):
            binds = self._bulk(request, t)
        else:
            return None
        self.requests += 1
        v2c.apiPDU.set_varbinds(response, binds)
        reply = v2c.apiMessage.get_response(message)
        v2c.apiMessage.set_pdu(reply, response)
        return encoder.encode(reply)

    def _get(self, oid: tuple[int, ...], t: float) -> Any:
        make = self._values.get(oid)
        return make(t) if make is not None else v2c.NoSuchInstance("")

    def _next(self, oid: tuple[int, ...], t: float) -> tuple[Any, Any]:
        at = bisect.bisect_right(self._order, oid)
        if at >= len(self._order):
            return v2c.ObjectIdentifier(oid), v2c.EndOfMibView("")
        found = self._order[at]
        return v2c.ObjectIdentifier(found), self._values[found](t)

    def _bulk(self, request: Any, t: float) -> list[tuple[Any, Any]]:
        fixed = int(v2c.apiBulkPDU.get_non_repeaters(request))
        repeat = min(int(v2c.apiBulkPDU.get_max_repetitions(request)), 200)
        asked = [tuple(o) for o, _ in v2c.apiBulkPDU.get_varbinds(request)]
        binds = [self._next(o, t) for o in asked[:fixed]]
        cursors = asked[fixed:]
        for _ in range(repeat):
            step = [self._next(o, t) for o in cursors]
            binds.extend(step)
            cursors = [tuple(o) for o, _ in step]
            if all(isinstance(v, v2c.EndOfMibView) for _, v in step):
                break
        return binds


def _instance(row: int, index_at: int) -> tuple[int, ...]:
    """An instance suffix holding `row` at `index_at` (other parts 1): (1, 3, 1) for -2."""
    size = max(-index_at if index_at < 0 else index_at + 1, 1) + (1 if index_at < -1 else 0)
    parts = [1] * size
    parts[index_at] = row
    return tuple(parts)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, sim: SnmpSimulator) -> None:
        self.sim = sim
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.sim.answer(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


async def serve(sim: SnmpSimulator, host: str, port: int) -> None:
    """Answer on host:port (UDP) until cancelled."""
    await (await start(sim, host, port))


async def start(sim: SnmpSimulator, host: str, port: int) -> asyncio.Task:
    """Bind host:port now (UDP has no connect to wait for) and answer until the returned task
    is cancelled."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(sim),
                                                       local_addr=(host, port))
    log.info("snmp simulator %s on %s:%s", sim.profile.model, host, port)

    async def run() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            with contextlib.suppress(Exception):
                transport.close()

    return asyncio.create_task(run())

