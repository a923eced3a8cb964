"""SNMP driver (v2c, v3 authPriv): scalars by GET, reduced columns by GETBULK walks, counters
turned into rates between polls, traps and informs turned into readings at once.

Without `traps` the agent polls it (`read()`); with `traps` it pushes (`subscribe()` polls on
the same fixed-rate schedule and delivers a notification's readings as it arrives, then polls
at once so every related point is fresh). SNMP devices are read-only here: writes and
methods are refused.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cityops.errors import DeviceConfigInvalid, DeviceRejected
from cityops.wire import Value
from edge_agents.driver import OnReadings
from edge_agents.drivers.snmp import poll
from edge_agents.drivers.snmp.client import Credentials, SnmpClient, Varbind
from edge_agents.drivers.snmp.config import SnmpEndpoint, SnmpUser
from edge_agents.drivers.snmp.rates import CounterRates, uptime_went_back
from edge_agents.drivers.snmp.traps import TrapHub, trap_values
from edge_agents.points import Method, Reading, SnmpPoint, SnmpProfile

log = logging.getLogger(__name__)


class SnmpDriver:
    def __init__(self, device: str, profile: SnmpProfile, endpoint: SnmpEndpoint,
                 timeout_s: float = 2.0, poll_interval_s: float = 10.0,
                 traps: dict[tuple[str, int], Any] | None = None) -> None:
        self.device, self.profile, self.endpoint = device, profile, endpoint
        self.timeout_s, self.poll_interval_s = timeout_s, poll_interval_s
        self._hubs = traps if traps is not None else {}
        self._client: SnmpClient | None = None
        self._state = poll.PollState()
        self._scalars = [p for p in profile.points if p.address.oid is not None]
        self._walked = [p for p in profile.points if p.address.walk is not None]
        self._notified: asyncio.Queue[list[Varbind]] = asyncio.Queue(maxsize=1000)

    @property
    def pushes(self) -> bool:
        return self.endpoint.traps is not None

    @property
    def requests(self) -> int:
        return self._client.requests if self._client else 0

    async def connect(self) -> None:
        creds = self._credentials()
        self._client = SnmpClient(self.endpoint.host, self.endpoint.port, creds,
                                  self.timeout_s, self.endpoint.retries)
        await self._client.open()
        self._state = poll.PollState(rates=CounterRates(min_window_s=self.poll_interval_s / 2))
        # the first poll sets every counter's baseline, so the next poll has its rates
        await self._poll_once()
        if self.endpoint.traps is not None:
            self._join_traps()

    async def close(self) -> None:
        listener = self.endpoint.traps
        if listener is not None:
            hub = self._hubs.get((listener.host, listener.port))
            if hub is not None:
                hub.leave(self.device)
                if hub.empty:
                    hub.close()
                    del self._hubs[(listener.host, listener.port)]
        if self._client is not None:
            self._client.close()
            self._client = None

    async def read(self) -> list[Reading]:
        return await self._poll_once()

    async def subscribe(self, on_readings: OnReadings) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            on_readings(await self._poll_once())
            next_at += self.poll_interval_s
            if next_at < loop.time():
                next_at = loop.time()
            try:
                varbinds = await asyncio.wait_for(self._notified.get(),
                                                  max(0.0, next_at - loop.time()))
            except TimeoutError:
                continue
            on_readings(self._trap_readings(varbinds))
            next_at = loop.time()  # poll now: the notification's related points change too

    async def write(self, point: str, value: Value) -> Value:
        raise DeviceRejected(f"device {self.device}: SNMP points are read-only here")

    async def call(self, method: Method, args: dict[str, Value]) -> Value | None:
        raise DeviceRejected(f"device {self.device}: SNMP profiles have no methods")

    def _credentials(self) -> Credentials:
        ep = self.endpoint
        try:
            if ep.user is not None:
                return Credentials(user=ep.user, auth_key=ep.user.auth_key.read("user.auth_key"),
                                   priv_key=ep.user.priv_key.read("user.priv_key"))
            assert ep.community is not None  # the endpoint model requires one of them
            return Credentials(community=ep.community.read("community"))
        except ValueError as err:
            raise DeviceConfigInvalid(f"device {self.device}: endpoint.{err}") from err

    def _join_traps(self) -> None:
        listener = self.endpoint.traps
        assert listener is not None
        secrets: dict[str, str] = {}
        try:
            if listener.community is not None:
                secrets["community"] = listener.community.read("traps.community")
            for user in listener.users:
                secrets.update(_user_keys(user))
        except ValueError as err:
            raise DeviceConfigInvalid(f"device {self.device}: endpoint.{err}") from err
        key = (listener.host, listener.port)
        if key not in self._hubs:
            self._hubs[key] = TrapHub(*key)
        self._hubs[key].join(self.device, listener.source or self.endpoint.host, listener,
                             secrets, self._on_trap)

    def _on_trap(self, varbinds: list[Varbind]) -> None:
        try:
            self._notified.put_nowait(varbinds)
        except asyncio.QueueFull:
            log.warning("device %s: notifications arrive faster than they are handled; "
                        "one dropped", self.device)

    def _trap_readings(self, varbinds: list[Varbind]) -> list[Reading]:
        now = poll.now_ms()
        found = []
        for name, value in trap_values(self.profile.traps, varbinds):
            try:
                self.profile.point(name)
            except KeyError:
                log.info("device %s: a notification names %s, not in the profile", self.device,
                         name)
                continue
            found.append(Reading(self.device, name, now, value))  # type: ignore[arg-type]
        return found

    async def _poll_once(self) -> list[Reading]:
        assert self._client is not None, "connect() first"
        ep, state = self.endpoint, self._state
        oids = [poll.SYS_UPTIME] + [p.address.oid for p in self._scalars  # type: ignore[misc]
                                    if p.name not in state.use_fallback]
        got = await poll.get_many(self._client, oids, ep.oids_per_request)
        at_s = asyncio.get_running_loop().time()
        await self._fallbacks(got)
        self._check_uptime(got[poll.SYS_UPTIME])
        columns, refused = {}, {}
        for column in poll.walked_columns(self._walked):
            try:
                binds = await self._client.walk(column, ep.max_repetitions)
            except DeviceRejected as err:  # this column's points read bad, the rest read on
                refused[column], binds = err.detail, []
            columns[column] = poll.by_row(column, binds)
        now = poll.now_ms()
        readings = [r for p in self._scalars if (r := self._scalar(p, got, at_s, now))]
        for point in self._walked:
            value = poll.reduce_walk(point, columns)
            why = "" if value is not None else refused.get(
                point.address.walk or "", f"no row of {point.address.walk} to reduce")
            if value is not None and not isinstance(value, str | bool):
                value = point.to_engineering(value)
            readings.append(poll.reading(self.device, point, value, why, state, now))
        state.log_changes(self.device)
        return readings

    async def _fallbacks(self, got: dict[str, Varbind]) -> None:
        """Points whose OID is missing and that name a fallback (ifHCInOctets -> ifInOctets)
        read the fallback, from now on."""
        assert self._client is not None
        for p in self._scalars:
            if p.address.fallback and p.address.oid in got and got[p.address.oid].kind == "missing":
                self._state.use_fallback.add(p.name)
        oids = [p.address.fallback for p in self._scalars
                if p.name in self._state.use_fallback]
        if oids:
            got.update(await poll.get_many(self._client, oids,  # type: ignore[arg-type]
                                           self.endpoint.oids_per_request))

    def _check_uptime(self, bind: Varbind) -> None:
        if not isinstance(bind.value, int):
            return
        if uptime_went_back(self._state.uptime, bind.value):
            log.warning("device %s: the agent restarted (sysUpTime went back); counters start "
                        "a new baseline", self.device)
            self._state.rates.restart()
        self._state.uptime = bind.value

    def _scalar(self, point: SnmpPoint, got: dict[str, Varbind], at_s: float,
                now: int) -> Reading | None:
        oid = point.address.oid
        if point.name in self._state.use_fallback:
            oid = point.address.fallback
        bind = got.get(oid or "")
        if bind is None:
            return poll.reading(self.device, point, None, f"no answer for {oid}", self._state,
                                now)
        if point.address.rate:
            result = poll.rate_of(point, bind, self._state, at_s)
            if result is None:
                return None
            value, why = result
        else:
            value, why = poll.convert(point, bind)
        return poll.reading(self.device, point, value, why, self._state, now)


def _user_keys(user: SnmpUser) -> dict[str, str]:
    return {f"{user.username}.auth": user.auth_key.read(f"traps.users.{user.username}.auth_key"),
            f"{user.username}.priv": user.priv_key.read(f"traps.users.{user.username}.priv_key")}
