"""One SNMP poll: which requests it makes and how answers become readings (per point: a point
the agent lacks or answers oddly reads quality bad with the reason logged once; the rest of
the device reads on)."""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass, field

from cityops.errors import DeviceRejected
from cityops.wire import Quality, Value
from edge_agents.drivers.snmp.client import MISSING, SnmpClient, Varbind
from edge_agents.drivers.snmp.config import SnmpAddress
from edge_agents.drivers.snmp.rates import CounterRates
from edge_agents.points import DataType, Reading, SnmpPoint

log = logging.getLogger(__name__)

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
NUMERIC_KINDS = {"integer", "gauge", "counter32", "counter64", "timeticks"}
REFUSED = "refused"  # the agent answered this OID alone with an error status


@dataclass
class PollState:
    """What a device's polls remember: counters, uptime, which points are in error."""

    rates: CounterRates = field(default_factory=CounterRates)
    uptime: int | None = None
    failing: dict[str, str] = field(default_factory=dict)  # point -> why, logged once
    use_fallback: set[str] = field(default_factory=set)  # points whose main OID is missing
    changed: list[str] = field(default_factory=list)  # this poll's new failures and recoveries

    def log_changes(self, device: str) -> None:
        """One line per poll for the points that started or stopped failing: a 24-port profile
        on an 8-port switch must not log 160 lines."""
        if self.changed:
            shown = "; ".join(self.changed[:5])
            more = f" (and {len(self.changed) - 5} more)" if len(self.changed) > 5 else ""
            log.warning("device %s: %s%s", device, shown, more)
            self.changed.clear()


async def get_many(client: SnmpClient, oids: list[str], per_request: int) -> dict[str, Varbind]:
    """Every OID's answer. A request the agent refuses with an error status (genErr, tooBig,
    noAccess) is asked again one OID at a time, so only the OIDs still refused read bad."""
    got: dict[str, Varbind] = {}
    for start in range(0, len(oids), per_request):
        chunk = oids[start:start + per_request]
        try:
            binds = await client.get(chunk)
        except DeviceRejected:
            if len(chunk) == 1:
                raise
            binds = [b for oid in chunk for b in await _get_alone(client, oid)]
        for bind in binds:
            got[bind.oid] = bind
    return got


async def _get_alone(client: SnmpClient, oid: str) -> list[Varbind]:
    try:
        return await client.get([oid])
    except DeviceRejected as err:
        return [Varbind(oid, REFUSED, err.detail)]


def reduce_walk(point: SnmpPoint, columns: dict[str, dict[str, Varbind]]) -> Value | None:
    """A walked column reduced over the rows every `where` keeps (None: no row). `first` of
    a text column with no row is "" (an LLDP port without a neighbour)."""
    address = point.address
    rows = columns[address.walk or ""]
    keep = [i for i in rows if all(_row_matches(columns[w.oid].get(i), w.equals)
                                   for w in address.where) and _in_row(i, address)]
    if address.reduce == "first":
        if not keep:
            return "" if point.data_type is DataType.STRING else None
        first = rows[keep[0]].value
        return first if point.data_type is DataType.STRING else _number(first)
    values = [rows[i].value for i in keep if rows[i].kind in NUMERIC_KINDS]
    if address.reduce == "count":
        return len(keep)
    if not values:
        return None
    if address.reduce == "ratio":
        per = columns[address.per or ""]
        total = sum(per[i].value for i in keep if i in per and per[i].kind in NUMERIC_KINDS)
        return sum(values) / total if total else None
    return float({"mean": statistics.fmean, "sum": sum, "min": min, "max": max}[
        address.reduce or "mean"](values))


def _in_row(index: str, address: SnmpAddress) -> bool:
    if address.index_at is None:
        return True
    parts = index.split(".")
    at = address.index_at
    return -len(parts) <= at < len(parts) and parts[at] == str(address.row)


def _number(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _row_matches(bind: Varbind | None, equals: object) -> bool:
    return bind is not None and str(bind.value) == str(equals)


def walked_columns(points: list[SnmpPoint]) -> list[str]:
    wanted: list[str] = []
    for p in points:
        a = p.address
        for oid in (a.walk, a.per, *(w.oid for w in a.where)):
            if oid and oid not in wanted:
                wanted.append(oid)
    return wanted


def by_row(column: str, binds: list[Varbind]) -> dict[str, Varbind]:
    """A walked column keyed by its row index (the OID's part after the column)."""
    cut = len(column) + 1
    return {b.oid[cut:]: b for b in binds}


def convert(point: SnmpPoint, bind: Varbind) -> tuple[Value | None, str]:
    """An answered value as the point's engineering value, or (None, why)."""
    if bind.kind in (MISSING, REFUSED):
        return None, _absent(bind)
    value = bind.value
    if point.address.equals is not None:
        return value == point.address.equals, ""
    if point.data_type is DataType.STRING:
        return str(value), ""
    if bind.kind not in NUMERIC_KINDS or not isinstance(value, int):
        return None, f"{bind.oid} is {bind.kind}, not a number"
    if point.data_type is DataType.BOOL:
        return value != 0, ""
    return point.to_engineering(value), ""


def reading(device: str, point: SnmpPoint, value: Value | None, why: str,
            state: PollState, now_ms: int) -> Reading:
    """A reading, good or bad, noting a point's failure when it starts and ends."""
    if why:
        if state.failing.get(point.name) != why:
            state.changed.append(f"{point.name}: {why}")
        state.failing[point.name] = why
        return Reading(device, point.name, now_ms, None, Quality.BAD)
    if state.failing.pop(point.name, None) is not None:
        state.changed.append(f"{point.name} reads again")
    return Reading(device, point.name, now_ms, value)


def rate_of(point: SnmpPoint, bind: Varbind, state: PollState,
            at_s: float) -> tuple[Value | None, str] | None:
    """A counter point's rate since the previous poll; None when there is nothing to report
    yet (first sample, new baseline after a restart)."""
    if bind.kind in (MISSING, REFUSED):
        return None, _absent(bind)
    if not isinstance(bind.value, int):
        return None, f"{bind.oid} is {bind.kind}, not a counter"
    rate = state.rates.update(point.name, bind.value, bind.kind, at_s)
    if rate.value is None:
        if rate.why in ("first sample", "too soon after the previous sample") \
                or rate.why.startswith("counter changed"):
            return None
        return None, rate.why
    return point.to_engineering(rate.value), ""


def _absent(bind: Varbind) -> str:
    if bind.kind == REFUSED:
        return f"the agent refused {bind.oid}: {bind.value}"
    return f"the agent has no {bind.oid} (noSuchObject/noSuchInstance)"


def now_ms() -> int:
    return int(time.time() * 1000)
