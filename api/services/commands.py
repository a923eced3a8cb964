"""Commands to devices: checked against the profile, recorded, published, followed.

pending (recorded) -> sent (the broker acknowledged it) -> succeeded | failed | rejected |
expired (the agent's result, or no result by `expires_at` plus a grace period). A result only
moves a command out of pending or sent, so a late or repeated result changes nothing.
Commands for one device are recorded and published one at a time, under a PostgreSQL advisory
lock per device (so also across several API processes), each publish acknowledged before the
next is recorded: they reach the broker, and the agent (one session, QoS 1), in the order they
were accepted. `applied_at` is the gateway's time of the command, `finished_at` the platform's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from api.services.devices import profile_of
from api.services.live import announce
from api.services.mqtt_link import MqttLink
from cityops import wire
from cityops.errors import BrokerUnavailable, InvalidInput, NotFound, WireError
from edge_agents.commands import check_args
from edge_agents.points import DataType, PointBase, Profile

log = logging.getLogger(__name__)
FINAL = frozenset({"succeeded", "failed", "rejected", "expired"})
EXPIRY_GRACE_S = 5.0
COLUMNS = (
    "id, device_id AS device, gateway_id AS gateway, point, value, method, args, state, detail,"
    " readback, created_by, created_at, sent_at, finished_at, applied_at, expires_at,"
    " preset_run_id, step"
)


def check_write(point: PointBase, value: Any) -> str | None:
    why = point.check_write(value)
    # not float(value): an int above 2**1024 would overflow it (a 500 instead of a 422)
    if why is None and point.data_type.is_numeric and point.data_type not in (
        DataType.FLOAT32, DataType.FLOAT64
    ) and point.scale == 1.0 and point.offset == 0.0 and isinstance(value, float) \
            and not value.is_integer():
        why = f"point {point.name} takes a whole number"
    return why


def check_against(profile: Profile, step: dict[str, Any]) -> None:
    """InvalidInput unless the profile allows this write or method call."""
    if step.get("point") is not None:
        try:
            point = profile.point(step["point"])
        except KeyError as err:
            raise InvalidInput(f"point: {profile.model} has no point {step['point']!r}") from err
        if (why := check_write(point, step.get("value"))) is not None:
            raise InvalidInput(f"value: {why}")
        return
    try:
        method = profile.method(step["method"])
    except KeyError as err:
        raise InvalidInput(f"method: {profile.model} has no method {step['method']!r}") from err
    if (why := check_args(SimpleNamespace(profile=profile), method, step.get("args") or {})):
        raise InvalidInput(f"args: {why}")


async def check_command(conn: AsyncConnection, device: str, step: dict[str, Any]) -> str:
    """The device's gateway, once the command is known to be acceptable."""
    cur = await conn.execute(
        "SELECT d.gateway_id, d.profile_id, g.revoked_at FROM devices d"
        " JOIN gateways g ON g.id = d.gateway_id WHERE d.id = %s", (device,),
    )
    row = await cur.fetchone()
    if row is None:
        raise InvalidInput(f"device {device!r} is not registered")
    gateway, profile_id, revoked_at = row
    if revoked_at is not None:
        raise InvalidInput(f"device {device!r} is on revoked gateway {gateway!r}")
    check_against(await profile_of(conn, profile_id), step)
    return gateway


def _payload(device: str, step: dict[str, Any], expires_at: datetime) -> bytes:
    expires_ms = int(expires_at.timestamp() * 1000)
    if step.get("point") is not None:
        return wire.encode(wire.WriteCommand(device=device, point=step["point"],
                                             value=step["value"], expires_at=expires_ms))
    return wire.encode(wire.MethodCommand(device=device, method=step["method"],
                                          args=step.get("args") or {}, expires_at=expires_ms))


@contextlib.asynccontextmanager
async def _device_lock(conn: AsyncConnection, device: str) -> AsyncIterator[None]:
    """One device's commands recorded and published one at a time across API processes (the
    asyncio lock only orders them within one), so the broker gets them in accepted order. A
    session lock: it must outlive the commit that precedes the publish."""
    await conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 7))", (device,))
    await conn.commit()
    try:
        yield
    finally:
        with contextlib.suppress(psycopg.Error):
            await conn.rollback()
            await conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 7))", (device,))
            await conn.commit()


class Commander:
    def __init__(self, pool: AsyncConnectionPool, link: MqttLink) -> None:
        self.pool = pool
        self.link = link
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def submit(self, actor: str, device: str, step: dict[str, Any], ttl_s: float,
                     run: tuple[uuid.UUID, int] | None = None) -> dict[str, Any]:
        """Check, record and publish one command; the command's row. BrokerUnavailable when
        it could not be sent (the command is then recorded as failed)."""
        async with self._locks[device], self.pool.connection() as conn, \
                _device_lock(conn, device):
            return await self._submit(conn, actor, device, step, ttl_s, run)

    async def _submit(self, conn: AsyncConnection, actor: str, device: str,
                      step: dict[str, Any], ttl_s: float, run: tuple[uuid.UUID, int] | None
                      ) -> dict[str, Any]:
        command_id = uuid.uuid4()
        gateway = await check_command(conn, device, step)
        expires_at = datetime.now(UTC) + timedelta(seconds=ttl_s)
        await conn.execute(
            "INSERT INTO commands (id, device_id, gateway_id, point, value, method, args,"
            " created_by, expires_at, preset_run_id, step)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (command_id, device, gateway, step.get("point"),
             Jsonb(step.get("value")) if step.get("point") is not None else None,
             step.get("method"), Jsonb(step.get("args") or {}) if step.get("method") else None,
             actor, expires_at, run[0] if run else None, run[1] if run else None),
        )
        # committed before it is sent: the agent's result may come back at once
        await conn.commit()
        try:
            await self.link.publish(wire.command_topic(gateway, str(command_id)),
                                    _payload(device, step, expires_at))
        except BrokerUnavailable as err:
            await self._finish(conn, command_id, "failed", f"not sent: {err.detail}", None)
            raise
        async with conn.transaction():
            await conn.execute(
                "UPDATE commands SET state = 'sent', sent_at = clock_timestamp()"
                " WHERE id = %s AND state = 'pending'", (command_id,),
            )
            await announce(conn, "command", {"id": str(command_id), "device": device,
                                             "state": "sent"})
        await conn.commit()
        return await get(conn, command_id)

    async def _finish(self, conn: AsyncConnection, command_id: uuid.UUID | str, state: str,
                      detail: str, readback: Any, applied_ms: int | None = None) -> bool:
        async with conn.transaction():
            cur = await conn.execute(
                "UPDATE commands SET state = %s, detail = %s, readback = %s,"
                " finished_at = clock_timestamp(), applied_at = to_timestamp(%s / 1000.0)"
                " WHERE id = %s AND state IN ('pending', 'sent') RETURNING device_id",
                (state, detail, None if readback is None else Jsonb(readback), applied_ms,
                 command_id),
            )
            row = await cur.fetchone()
            if row is not None:
                await announce(conn, "command", {"id": str(command_id), "device": row[0],
                                                 "state": state, "detail": detail[:300],
                                                 "readback": _short(readback)})
        return row is not None

    async def record_result(self, topic: str, payload: bytes) -> None:
        gateway = wire.gateway_of(topic, "command-results")
        command_id = topic.rsplit("/", 1)[1]
        try:
            uuid.UUID(command_id)
            result: wire.CommandResult = wire.decode(wire.CommandResult, payload)
        except (ValueError, WireError) as err:
            await self._dead_letter(topic, payload, err)
            return
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT gateway_id FROM commands WHERE id = %s",
                                     (command_id,))
            row = await cur.fetchone()
            if row is None and not await _registered(conn, gateway):
                # another deployment's gateway, on a shared broker: its own API has the
                # command (each deployment's APIs get a copy: mqtt_link.subscriptions)
                log.debug("command result of gateway %s, not registered here: ignored", gateway)
                return
            if row is None or row[0] != gateway:
                # a gateway may only answer for its own commands
                await self._dead_letter(topic, payload, WireError("unknown command"))
                return
            await self._finish(conn, command_id, result.status.value, result.detail,
                               result.readback, result.ts)

    async def _dead_letter(self, topic: str, payload: bytes, err: Exception) -> None:
        reason = getattr(err, "context", {}).get("reason", "schema")
        detail = getattr(err, "detail", str(err))
        log.warning("command result on %s refused: %s", topic, detail)
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO dead_letters (topic, payload, reason, detail) VALUES (%s, %s, %s, %s)",
                (topic, payload, reason, f"command result: {detail}"[:1000]),
            )

    async def expire_loop(self, interval_s: float = 1.0) -> None:
        """Commands without a result by expires_at (plus grace) end as expired."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                async with self.pool.connection() as conn:
                    cur = await conn.execute(
                        "SELECT id FROM commands WHERE state IN ('pending', 'sent')"
                        " AND expires_at < now() - make_interval(secs => %s)",
                        (EXPIRY_GRACE_S,),
                    )
                    for (command_id,) in await cur.fetchall():
                        await self._finish(conn, command_id, "expired",
                                           "no result from the gateway before it expired", None)
            except Exception as err:
                log.warning("commands: expiry sweep failed: %s", err)


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 200:
        return value[:200]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


async def get(conn: AsyncConnection, command_id: uuid.UUID | str) -> dict[str, Any]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {COLUMNS} FROM commands WHERE id = %s", (command_id,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"command {command_id} not found")
    return row


async def _registered(conn: AsyncConnection, gateway: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM gateways WHERE id = %s", (gateway,))
    return await cur.fetchone() is not None
