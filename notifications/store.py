"""Channels and subscriptions as the API reads and writes them. A channel's secret is stored
encrypted with the deployment's key (datafoundation/secrets.py) and never read back out."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.errors import ForeignKeyViolation, UniqueViolation
from psycopg.rows import dict_row

from cityops.errors import Conflict, InvalidInput, NotFound
from cityops.principal import Role
from datafoundation.secrets import encrypt
from notifications import registry
from notifications.sources import KINDS, LEADER_AUDIENCE

_CHANNEL = ("SELECT id, name, kind, config, secret IS NOT NULL AS has_secret, enabled,"
            " created_by, created_at FROM notification_channels")
_SUBSCRIPTION = ("SELECT id, name, channel_id, kinds, min_severity, departments, role,"
                 " recipients, quiet_start, quiet_end, created_by, created_at"
                 " FROM notification_subscriptions")


async def _rows(conn: AsyncConnection, sql: str, args: tuple = ()) -> list[dict]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, args)
        return await cur.fetchall()


async def channels(conn: AsyncConnection) -> list[dict]:
    return await _rows(conn, _CHANNEL + " ORDER BY id")


async def add_channel(conn: AsyncConnection, secret_key: str, body: dict, actor: str) -> dict:
    config, secret = registry.parse(body["kind"], body["config"], body["secret"])
    token = encrypt(secret_key, secret.model_dump()) if body["secret"] else None
    try:
        rows = await _rows(conn, "INSERT INTO notification_channels (name, kind, config, secret,"
                           " enabled, created_by) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                           (body["name"], body["kind"], config.model_dump_json(), token,
                            body["enabled"], actor))
    except UniqueViolation:
        raise Conflict(f"name: a channel named {body['name']!r} exists") from None
    return (await _rows(conn, _CHANNEL + " WHERE id = %s", (rows[0]["id"],)))[0]


async def delete(conn: AsyncConnection, table: str, ident: int, what: str) -> None:
    async with conn.cursor() as cur:
        await cur.execute(f"DELETE FROM {table} WHERE id = %s", (ident,))  # table: ours
        if cur.rowcount == 0:
            raise NotFound(f"{what} {ident} does not exist")


async def subscriptions(conn: AsyncConnection) -> list[dict]:
    return await _rows(conn, _SUBSCRIPTION + " ORDER BY id")


def _check_subscription(body: dict) -> None:
    unknown = sorted(set(body["kinds"]) - set(KINDS))
    if unknown:
        raise InvalidInput(f"kinds: unknown {', '.join(unknown)}; known: {', '.join(KINDS)}")
    if body["role"] is not None and body["role"] not in {r.value for r in Role} | {
            LEADER_AUDIENCE}:
        raise InvalidInput(f"role: unknown role {body['role']!r}")
    if (body["quiet_start"] is None) != (body["quiet_end"] is None):
        raise InvalidInput("quiet_start, quiet_end: give both or neither")


async def add_subscription(conn: AsyncConnection, body: dict, actor: str) -> dict:
    _check_subscription(body)
    try:
        rows = await _rows(
            conn, "INSERT INTO notification_subscriptions (name, channel_id, kinds, min_severity,"
            " departments, role, recipients, quiet_start, quiet_end, created_by)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (body["name"], body["channel_id"], body["kinds"], body["min_severity"],
             body["departments"], body["role"], body["recipients"], body["quiet_start"],
             body["quiet_end"], actor))
    except ForeignKeyViolation:
        raise NotFound(f"channel_id: channel {body['channel_id']} does not exist") from None
    return (await _rows(conn, _SUBSCRIPTION + " WHERE id = %s", (rows[0]["id"],)))[0]


async def deliveries(conn: AsyncConnection, departments: frozenset[str] | None,
                     state: str | None, limit: int) -> list[dict]:
    """The delivery log, newest first; a department-scoped caller sees its departments' only."""
    return await _rows(
        conn, "SELECT d.id, d.notification_id, n.kind, n.severity, n.department_id, n.title,"
        " d.subscription_id, d.channel_id, c.name AS channel, c.kind AS channel_kind,"
        " d.recipients, d.state, d.attempts, d.next_at, d.held, d.last_status, d.last_answer,"
        " d.log, d.created_at, d.sent_at FROM notification_deliveries d"
        " JOIN notifications n ON n.id = d.notification_id"
        " JOIN notification_channels c ON c.id = d.channel_id"
        " WHERE (%s::text IS NULL OR d.state = %s)"
        " AND (%s::text[] IS NULL OR n.department_id = ANY(%s))"
        " ORDER BY d.id DESC LIMIT %s",
        (state, state, None if departments is None else sorted(departments),
         None if departments is None else sorted(departments), limit))


async def channel_row(conn: AsyncConnection, channel_id: int) -> dict:
    """A channel with its (encrypted) secret, for sending a test message."""
    rows = await _rows(conn, "SELECT kind, config, secret FROM notification_channels"
                       " WHERE id = %s", (channel_id,))
    if not rows:
        raise NotFound(f"channel {channel_id} does not exist")
    return rows[0]
