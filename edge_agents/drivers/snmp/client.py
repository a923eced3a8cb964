"""The only pysnmp import: GET, GETBULK and GETNEXT walks for the driver, and a receiver of
traps and informs. The rest of the code speaks OIDs as dotted text and `Varbind`s.

pysnmp (lextudio line, asyncio API `pysnmp.hlapi.v3arch.asyncio`) is imported inside the
functions: the agent loads it only when an SNMP device is configured.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cityops.errors import DeviceAuthRefused, DeviceRejected, DeviceUnreachable
from edge_agents.drivers.snmp.config import SnmpUser

log = logging.getLogger(__name__)

# pysnmp error indications that mean "these credentials are wrong": retrying soon cannot help
AUTH_ERRORS = {"WrongDigest", "UnknownUserName", "DecryptionError", "AuthenticationFailure",
               "UnknownCommunityName", "UnsupportedSecurityLevel", "UnknownSecurityName"}
AUTH_RETRY_S = 300.0
MISSING = "missing"  # noSuchObject, noSuchInstance, endOfMibView
MAX_WALK_ROWS = 100_000  # a column longer than this is cut: no profile reduces such tables


@dataclass(frozen=True, slots=True)
class Varbind:
    oid: str
    kind: str  # integer gauge counter32 counter64 timeticks string oid missing
    value: int | str | None


@dataclass(frozen=True)
class Credentials:
    """What a request authenticates with; the keys are read by the driver at connect."""

    community: str | None = None
    user: SnmpUser | None = None
    auth_key: str = ""
    priv_key: str = ""


_KINDS = {"Integer32": "integer", "Integer": "integer", "Gauge32": "gauge",
          "Unsigned32": "gauge", "Counter32": "counter32", "Counter64": "counter64",
          "TimeTicks": "timeticks", "OctetString": "string", "ObjectIdentifier": "oid",
          "IpAddress": "string", "Opaque": "string", "Bits": "string"}


def to_varbind(oid: Any, value: Any) -> Varbind:
    name = type(value).__name__
    text = str(oid)
    if name in ("NoSuchObject", "NoSuchInstance", "EndOfMibView", "Null"):
        return Varbind(text, MISSING, None)
    kind = _KINDS.get(name)
    if kind is None:  # a subclass (a MIB textual convention): go by its base
        kind = next((_KINDS[b.__name__] for b in type(value).__mro__ if b.__name__ in _KINDS),
                    "string")
    if kind == "string":
        if name == "IpAddress":
            return Varbind(text, kind, ".".join(str(b) for b in value.asOctets()))
        return Varbind(text, kind, value.asOctets().decode("utf-8", "replace"))
    if kind == "oid":
        return Varbind(text, kind, str(value))
    return Varbind(text, kind, int(value))


def _oid_key(oid: str) -> tuple[int, ...]:
    return tuple(int(part) for part in oid.split("."))


def _auth_data(creds: Credentials) -> Any:
    from pysnmp.hlapi.v3arch import asyncio as hl

    if creds.user is None:
        # v2c is what most field gear speaks; v3 authPriv is offered and documented
        return hl.CommunityData(creds.community or "", mpModel=1)  # noqa: S508
    user = creds.user
    return hl.UsmUserData(user.username, authKey=creds.auth_key, privKey=creds.priv_key,
                          authProtocol=getattr(hl, AUTH_PROTOCOLS[user.auth_protocol]),
                          privProtocol=getattr(hl, PRIV_PROTOCOLS[user.priv_protocol]))


AUTH_PROTOCOLS = {"MD5": "USM_AUTH_HMAC96_MD5", "SHA": "USM_AUTH_HMAC96_SHA",
                  "SHA224": "USM_AUTH_HMAC128_SHA224", "SHA256": "USM_AUTH_HMAC192_SHA256",
                  "SHA384": "USM_AUTH_HMAC256_SHA384", "SHA512": "USM_AUTH_HMAC384_SHA512"}
PRIV_PROTOCOLS = {"DES": "USM_PRIV_CBC56_DES", "AES": "USM_PRIV_CFB128_AES",
                  "AES192": "USM_PRIV_CFB192_AES", "AES256": "USM_PRIV_CFB256_AES"}


class SnmpClient:
    """One device's manager session: an engine, a transport target and the credentials."""

    def __init__(self, host: str, port: int, creds: Credentials, timeout_s: float,
                 retries: int) -> None:
        self.where = f"{host}:{port}"
        self._host, self._port, self._creds = host, port, creds
        self._timeout_s, self._retries = timeout_s, retries
        self._engine: Any = None
        self._address: str = ""  # the engine's name for this target and its credentials
        self.requests = 0

    async def open(self) -> None:
        from pysnmp.hlapi.v3arch import asyncio as hl
        from pysnmp.hlapi.v3arch.asyncio.cmdgen import LCD

        self._engine = hl.SnmpEngine()
        try:
            target = await hl.UdpTransportTarget.create(
                (self._host, self._port), timeout=self._timeout_s, retries=self._retries)
        except Exception as err:  # pysnmp: PySnmpError for an address it cannot resolve
            raise DeviceUnreachable(f"{self.where}: {err}") from err
        self._address, _params = LCD.configure(self._engine, _auth_data(self._creds), target, "")

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None

    async def get(self, oids: list[str]) -> list[Varbind]:
        from pysnmp.entity.rfc3413 import cmdgen

        err, status, index, binds = await self._send(cmdgen.GetCommandGenerator(), oids)
        self._check(err, status, index, oids)
        return [to_varbind(name, value) for name, value in binds]

    async def _send(self, generator: Any, oids: list[str], *bulk: int) -> tuple:
        """One request, its varbinds given as OIDs: pysnmp's high-level calls resolve every
        requested OID against the MIB tree, two thirds of a poll's CPU (cProfile), even with
        lookupMib=False; its command generators take the values as they are."""
        from pysnmp.proto import rfc1902
        from pysnmp.proto.api import v2c

        future = asyncio.get_running_loop().create_future()

        def done(_engine: Any, _handle: Any, err: Any, status: Any, index: Any, binds: Any,
                 _ctx: Any) -> None:
            if not future.done():
                future.set_result((err, status, index, binds))

        varbinds = [(rfc1902.ObjectName(o), v2c.null) for o in oids]
        generator.send_varbinds(self._engine, self._address, None, "", *bulk, varbinds, done,
                                None)
        return await future

    async def walk(self, column: str, max_repetitions: int, bulk: bool = True) -> list[Varbind]:
        """Every instance under `column`: GETBULK (v2c/v3) or GETNEXT, until past the subtree."""
        from pysnmp.entity.rfc3413 import cmdgen

        prefix, rows, start = column + ".", [], column
        while True:
            if bulk:
                sent = self._send(cmdgen.BulkCommandGenerator(), [start], 0, max_repetitions)
            else:
                sent = self._send(cmdgen.NextCommandGenerator(), [start])
            err, status, index, binds = await sent
            self._check(err, status, index, [start])
            got = [to_varbind(n, v) for n, v in binds]
            inside = [b for b in got if b.oid.startswith(prefix) and b.kind != MISSING]
            rows.extend(inside)
            if not got or len(inside) < len(got) or len(rows) > MAX_WALK_ROWS:
                return rows
            if _oid_key(inside[-1].oid) <= _oid_key(start):  # a broken agent going round
                raise DeviceRejected(f"{self.where}: the walk of {column} does not advance "
                                     f"past {start}")
            start = inside[-1].oid

    def _check(self, err: Any, status: Any, index: Any, oids: list[str]) -> None:
        self.requests += 1
        if err:
            name = type(err).__name__
            if name in AUTH_ERRORS:
                raise DeviceAuthRefused(f"{self.where}: the agent refused the credentials "
                                        f"({err})", retry_after_s=AUTH_RETRY_S)
            if name == "RequestTimedOut":
                raise DeviceUnreachable(f"{self.where}: no answer within the timeout")
            raise DeviceUnreachable(f"{self.where}: {err}")
        if status:
            at = oids[int(index) - 1] if index and 0 < int(index) <= len(oids) else "?"
            raise DeviceRejected(f"{self.where}: {status.prettyPrint()} at {at}")


OnNotification = Callable[[str, list[Varbind]], None]


class NotificationReceiver:
    """Receives traps and informs on one UDP address (informs are acknowledged by pysnmp's
    receiver before the callback runs); calls `on_notification(source_ip, varbinds)`."""

    def __init__(self, host: str, port: int, on_notification: OnNotification) -> None:
        self.host, self.port = host, port
        self._on = on_notification
        self._engine: Any = None
        self._communities: set[str] = set()
        self._users: set[tuple[str, str | None]] = set()

    def start(self) -> None:
        from pysnmp.carrier.asyncio.dgram import udp
        from pysnmp.entity import config, engine
        from pysnmp.entity.rfc3413 import ntfrcv

        self._engine = engine.SnmpEngine()
        try:
            transport = udp.UdpTransport().open_server_mode((self.host, self.port))
        except Exception as err:  # an OSError wrapped by pysnmp: the port is taken
            raise DeviceRejected(f"cannot receive traps on {self.host}:{self.port}: {err}") \
                from err
        config.add_transport(self._engine, udp.DOMAIN_NAME, transport)
        ntfrcv.NotificationReceiver(self._engine, self._received)

    def add_community(self, community: str) -> None:
        from pysnmp.entity import config

        if community not in self._communities:
            index = f"c{len(self._communities)}"
            config.add_v1_system(self._engine, index, community)
            self._communities.add(community)

    def add_user(self, user: SnmpUser, auth_key: str, priv_key: str) -> None:
        from pysnmp.entity import config
        from pysnmp.hlapi.v3arch import asyncio as hl
        from pysnmp.proto import rfc1902

        # informs are sent to the receiver's own engine id; traps carry the sender's, which
        # the user must be localised with (`engine_id`)
        engines = [None] + ([user.engine_id.removeprefix("0x")] if user.engine_id else [])
        for engine_id in engines:
            if (user.username, engine_id) in self._users:
                continue
            extra = {} if engine_id is None else {
                "securityEngineId": rfc1902.OctetString(hexValue=engine_id)}
            config.add_v3_user(self._engine, user.username,
                               getattr(hl, AUTH_PROTOCOLS[user.auth_protocol]), auth_key,
                               getattr(hl, PRIV_PROTOCOLS[user.priv_protocol]), priv_key,
                               **extra)
            self._users.add((user.username, engine_id))

    def _received(self, engine: Any, state_ref: Any, _ctx_engine: Any, _ctx_name: Any,
                  binds: Any, _cb_ctx: Any) -> None:
        try:
            _domain, address = engine.message_dispatcher.get_transport_info(state_ref)
            self._on(str(address[0]), [to_varbind(n, v) for n, v in binds])
        except Exception:  # a bad notification must not end the receiver
            log.exception("snmp notification on %s:%s could not be handled", self.host,
                          self.port)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None
