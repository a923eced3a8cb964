"""Sessions (issue #18 item 5, issue #19 身份鉴别): people and walls stay logged in safely.

- A person's login opens a session (`auth_sessions`, migration 105). The answer carries a
  short access token (a JWT naming the session: `sid`) and a refresh token. Each refresh
  exchanges the refresh token for a new pair; the old one is marked used. A used refresh token
  presented again means it was copied: the whole session (every token of its family) is
  revoked. Logout, a new password and a disabled login end the session too; so does a session
  idle longer than `session_idle_timeout_s` (measured between refreshes: the console refreshes
  only after the person did something) or older than `session_max_s`.
- A wall or big screen is a registered display with its own long-lived token (`cod_...`),
  stored hashed, revocable, read-only (GET) and, when the display lists addresses, usable
  from those addresses only.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection

from api.auth import REFRESH_PREFIX, new_secret_token
from api.middleware import write_audit_conn
from cityops.api_keys import hash_api_key
from cityops.errors import AuthError
from cityops.principal import Principal, Role
from cityops.settings import Settings


@dataclass(frozen=True)
class Opened:
    principal: Principal
    refresh_token: str
    expires_at: datetime


async def open_session(conn: AsyncConnection, principal: Principal, source: str,
                       settings: Settings) -> Opened:
    """A new session for a person who just proved who they are."""
    session = str(uuid.uuid4())
    cur = await conn.execute(
        "INSERT INTO auth_sessions (id, username, auth_version, source, expires_at)"
        " VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s)) RETURNING expires_at",
        (session, principal.name, principal.version, source, settings.session_max_s))
    expires_at = (await cur.fetchone())[0]  # type: ignore[index]
    token = await _new_refresh(conn, session)
    return Opened(_with_session(principal, session), token, expires_at)


def _with_session(principal: Principal, session: str) -> Principal:
    return Principal(principal.name, principal.role, version=principal.version, session=session)


async def _new_refresh(conn: AsyncConnection, session: str) -> str:
    token, _, token_hash = new_secret_token(REFRESH_PREFIX)
    await conn.execute("INSERT INTO refresh_tokens (token_hash, session_id) VALUES (%s, %s)",
                       (token_hash, session))
    return token


_REFRESH_ROW = (
    "SELECT r.session_id::text, r.used_at, s.revoked_at, s.revoked_reason,"
    " s.expires_at <= now(), s.last_active_at < now() - make_interval(secs => %s),"
    " s.auth_version, s.expires_at, u.username, u.role, u.auth_version, u.disabled"
    " FROM refresh_tokens r JOIN auth_sessions s ON s.id = r.session_id"
    " JOIN users u ON u.username = s.username WHERE r.token_hash = %s FOR UPDATE OF r, s")


async def refresh(conn: AsyncConnection, token: str, source: str, settings: Settings) -> Opened:
    """Exchange a refresh token for a new access and refresh token (AuthError otherwise).

    The refusals that end the session are committed before the error is raised."""
    async with conn.transaction():
        cur = await conn.execute(_REFRESH_ROW, (settings.session_idle_timeout_s,
                                                hash_api_key(token)))
        row = await cur.fetchone()
        if row is None:
            raise AuthError("unknown refresh token: log in again")
        (session, used_at, revoked_at, reason, expired, idle, version, expires_at, name,
         role, user_version, disabled) = row
        problem = ("this session has ended (" + (reason or "revoked") + "): log in again"
                   if revoked_at is not None else None)
        ending = None
        if problem is None:
            ending = ("refresh token reused" if used_at is not None else
                      "expired" if expired else "idle" if idle else
                      "password changed or login disabled"
                      if disabled or version != user_version else None)
        if ending is not None:
            await end_session(conn, session, ending)
            if ending == "refresh token reused":
                await write_audit_conn(conn, actor=name, actor_kind="user", role=role,
                                       action="auth.refresh_reused", target=f"session:{session}",
                                       source=source, outcome="denied", status=401,
                                       detail={"session": session})
            problem = f"this session has ended ({ending}): log in again"
    if problem is not None:
        raise AuthError(problem)
    async with conn.transaction():
        await conn.execute("UPDATE refresh_tokens SET used_at = now() WHERE token_hash = %s",
                           (hash_api_key(token),))
        await conn.execute("UPDATE auth_sessions SET last_active_at = now() WHERE id = %s",
                           (session,))
        new_token = await _new_refresh(conn, session)
    return Opened(Principal(name, Role(role), version=user_version, session=session),
                  new_token, expires_at)


async def end_session(conn: AsyncConnection, session: str, reason: str) -> bool:
    """Revoke a session and so every refresh token of its family; False if it had ended."""
    cur = await conn.execute(
        "UPDATE auth_sessions SET revoked_at = now(), revoked_reason = %s"
        " WHERE id = %s AND revoked_at IS NULL", (reason, session))
    return cur.rowcount > 0


async def session_revoked(conn: AsyncConnection, session: str) -> str | None:
    """Why the session cannot be used (ended, unknown), or None when it can."""
    cur = await conn.execute(
        "SELECT revoked_reason, revoked_at IS NOT NULL, expires_at <= now()"
        " FROM auth_sessions WHERE id = %s::uuid", (session,))
    row = await cur.fetchone()
    if row is None:
        return "unknown session"
    if row[1]:
        return f"session ended ({row[0] or 'revoked'})"
    return "session expired" if row[2] else None


async def display_principal(conn: AsyncConnection, token: str, source: str) -> Principal:
    """The display a token belongs to, if it may be used from `source` now."""
    cur = await conn.execute(
        "SELECT id, revoked_at IS NOT NULL, expires_at <= now(), addresses FROM displays"
        " WHERE token_hash = %s", (hash_api_key(token),))
    row = await cur.fetchone()
    problem = ("unknown display token" if row is None else "display revoked" if row[1]
               else "display token expired" if row[2]
               else f"display {row[0]} is not used from {source or 'an unknown address'}"
               if not _from_listed(source, row[3]) else None)
    if problem is not None or row is None:
        raise AuthError(problem or "unknown display token")
    return Principal(row[0], Role.VIEWER, kind="display")


def _from_listed(source: str, networks: list | None) -> bool:
    if networks is None:
        return True
    try:
        address = ipaddress.ip_address(source)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n) for n in networks)
