"""Onboarding: registering and revoking gateways, and each gateway's retained config topic.

A gateway's config (its devices and their profiles, wire.GatewayConfig) is published retained
on cityops/v1/{gateway}/config, so an agent started with only its id, broker address and
credentials receives it on subscribing. Every registry change that touches a gateway bumps its
`config_version` in the same transaction; the config is then published, and recorded as
published. Whatever could not be published (broker away) is published again on reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from api.queries import registry as rq
from api.services.broker_accounts import GatewayCredentials
from api.services.mqtt_link import MqttLink
from cityops import wire
from cityops.errors import BrokerUnavailable, Conflict, InvalidInput, NotFound
from cityops.settings import Settings

log = logging.getLogger(__name__)


async def bump_config(conn: AsyncConnection, gateways: set[str]) -> None:
    """Mark gateways' configs as changed; call inside the transaction that changes them."""
    if gateways:
        await conn.execute(
            "UPDATE gateways SET config_version = config_version + 1 WHERE id = ANY(%s)",
            (sorted(gateways),),
        )


async def build_config(conn: AsyncConnection, gateway: str) -> wire.GatewayConfig:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT config_version FROM gateways WHERE id = %s", (gateway,))
        version = (await cur.fetchone() or {"config_version": 0})["config_version"]
        await cur.execute(
            "SELECT d.id, d.title, d.profile_id, d.address, d.site_id, d.department_id,"
            " d.latitude, d.longitude, d.poll_interval_s, d.timeout_s, p.body"
            " FROM devices d JOIN profiles p ON p.id = d.profile_id"
            " WHERE d.gateway_id = %s ORDER BY d.id", (gateway,),
        )
        rows = await cur.fetchall()
    devices, profiles = [], {}
    for r in rows:
        device = {
            "id": r["id"], "title": r["title"], "profile": r["profile_id"],
            "endpoint": r["address"], "poll_interval_s": r["poll_interval_s"],
            "timeout_s": r["timeout_s"], "site": r["site_id"],
            "department": r["department_id"], "latitude": r["latitude"],
            "longitude": r["longitude"],
        }
        devices.append({k: v for k, v in device.items() if v is not None})
        profiles[r["profile_id"]] = r["body"]
    return wire.GatewayConfig(gateway=gateway, devices=devices, profiles=profiles,
                              version=version)


class Onboarding:
    def __init__(self, settings: Settings, pool: AsyncConnectionPool, link: MqttLink,
                 credentials: GatewayCredentials) -> None:
        self.settings = settings
        self.pool = pool
        self.link = link
        self.credentials = credentials
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._tasks: set[asyncio.Task] = set()

    def credentials_body(self, gateway: str, password: str) -> dict[str, str]:
        return {
            "url": self.settings.gateway_mqtt_url or self.settings.mqtt_url,
            "username": gateway, "password": password,
            "topic_root": f"{wire.TOPIC_ROOT}/{gateway}",
        }

    async def register(self, body: dict[str, Any]) -> str | None:
        """Insert the gateway and issue its credentials, both or neither; the password.
        A gateway the broker knows already (made by cloud provisioning before it had a row)
        is adopted: the row is made and its password, which a running agent holds, is kept
        (None: POST .../credentials issues a new one)."""
        async with self.pool.connection() as conn, conn.transaction():
            await check_refs(conn, body.get("site"), body.get("department"))
            try:
                await conn.execute(
                    "INSERT INTO gateways (id, name, site_id, department_id, config_version)"
                    " VALUES (%s, %s, %s, %s, 1)",
                    (body["id"], body["name"], body.get("site"), body.get("department")),
                )
            except psycopg.errors.UniqueViolation as err:
                raise Conflict(f"gateway {body['id']!r} is already registered") from err
            state = await self.credentials.state(body["id"])
            if state == "revoked":
                await conn.execute("UPDATE gateways SET revoked_at = now() WHERE id = %s",
                                   (body["id"],))
            # inside the transaction: a broker failure leaves no gateway row behind
            password = None if state else await self.credentials.issue(body["id"])
        self.schedule({body["id"]})
        return password

    async def adopt(self, conn: AsyncConnection, gateway: str) -> None:
        """A broker account without a registry row gets its row (revoked if the account
        is), so that every gateway the broker knows can be revoked or re-issued here."""
        if await rq.exists(conn, "gateways", gateway):
            return
        state = await self.credentials.state(gateway)
        if state is not None:
            await conn.execute(
                "INSERT INTO gateways (id, config_version, revoked_at) VALUES (%s, 1,"
                " CASE WHEN %s THEN now() END) ON CONFLICT (id) DO NOTHING",
                (gateway, state == "revoked"))
            log.info("gateway %s: broker account adopted into the registry", gateway)

    async def rotate(self, gateway: str) -> str:
        """New credentials for a registered gateway (after a revoke, or a lost password)."""
        async with self.pool.connection() as conn:
            await self.adopt(conn, gateway)
            row = await rq.gateway(conn, gateway)
            if row["revoked_at"] is None:
                # a gateway registered from a config file may have no broker account yet
                with contextlib.suppress(NotFound):
                    await self.credentials.revoke(gateway)
            password = await self.credentials.issue(gateway)
            await conn.execute("UPDATE gateways SET revoked_at = NULL WHERE id = %s", (gateway,))
            await bump_config(conn, {gateway})
        self.schedule({gateway})  # after the commit: the publisher reads on its own connection
        return password

    async def revoke(self, gateway: str) -> None:
        async with self.pool.connection() as conn:
            await self.adopt(conn, gateway)
            row = await rq.gateway(conn, gateway)
            if row["revoked_at"] is not None:
                raise Conflict(f"gateway {gateway!r} is already revoked")
            # a gateway registered from a config file may have no broker account: the row
            # records the revoke all the same
            with contextlib.suppress(NotFound):
                await self.credentials.revoke(gateway)
            await conn.execute("UPDATE gateways SET revoked_at = now() WHERE id = %s", (gateway,))
        try:
            # an empty retained message removes the config from the broker
            await self.link.publish(wire.config_topic(gateway), b"", retain=True)
        except BrokerUnavailable as err:
            log.warning("gateway %s revoked; its retained config stays: %s", gateway, err)

    def schedule(self, gateways: set[str]) -> None:
        """Publish these gateways' configs in the background: a change answers at once, and
        a broker that is away delays the config, never the registry."""
        for gateway in sorted(gateways):
            task = asyncio.get_running_loop().create_task(self.publish(gateway))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def publish(self, gateway: str) -> bool:
        """Publish the gateway's current config, retained; False when the broker is away."""
        async with self._locks[gateway]:
            async with self.pool.connection() as conn:
                config = await build_config(conn, gateway)
            try:
                await self.link.publish(wire.config_topic(gateway), wire.encode(config),
                                        retain=True)
            except BrokerUnavailable as err:
                log.warning("gateway %s: config v%d not published yet: %s",
                            gateway, config.version, err)
                return False
            async with self.pool.connection() as conn:
                await conn.execute(
                    "UPDATE gateways SET config_published_version = %s WHERE id = %s"
                    " AND config_published_version < %s",
                    (config.version, gateway, config.version),
                )
            return True

    async def publish_pending(self) -> None:
        """After (re)connecting: publish every config the broker does not hold yet."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id FROM gateways WHERE revoked_at IS NULL"
                " AND config_published_version < config_version ORDER BY id"
            )
            stale = [r[0] for r in await cur.fetchall()]
        for gateway in stale:
            await self.publish(gateway)


async def provision(database_url: str, credentials: GatewayCredentials, gateway: str) -> str:
    """The cloud provisioning path (a server with `cityops_gateway` metadata): the registry
    row and fresh broker credentials together, as registering through the API makes them.
    A row registered before is kept (and un-revoked); an old password stops working."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO gateways (id, name, config_version) VALUES (%s, 'provisioned', 1)"
            " ON CONFLICT (id) DO UPDATE SET revoked_at = NULL", (gateway,))
        if await credentials.state(gateway) == "active":
            await credentials.revoke(gateway)
        # inside the transaction: a broker failure leaves no row behind
        password = await credentials.issue(gateway)
    return password


async def check_refs(conn: AsyncConnection, site: str | None, department: str | None) -> None:
    if site is not None and not await rq.exists(conn, "sites", site):
        raise InvalidInput(f"site {site!r} is not registered")
    if department is not None and not await rq.exists(conn, "departments", department):
        raise InvalidInput(f"department {department!r} is not registered")
