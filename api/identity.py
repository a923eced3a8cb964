"""The caller's current rights, read from the database on every request.

A JWT names a user and the `auth_version` it was issued under; the user's role, department
and whether it is disabled are read from `users` each time, so a demotion, a disabled login
or a new password (which bumps the version: migration 062) applies to tokens already out.
API keys are read the same way. Each API process keeps what it read for `CACHE_TTL_S` at most
(read again in the background from `REFRESH_S` on, so a steady caller never waits for the
query: api/refresh_ahead.py), and forgets everything when any user or key changes (the
trigger's NOTIFY, relayed by the live hub), so the cache saves a query per request
without keeping a revoked right alive.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from api.refresh_ahead import RefreshAheadCache
from api.sessions import display_principal, session_revoked
from api.throttle import Subjects, Throttle
from cityops.api_keys import hash_api_key
from cityops.errors import AuthError
from cityops.principal import Principal, Role

# a change made without NOTIFY reaching this process (its listening connection down) still
# applies within this long
CACHE_TTL_S = 2.0
REFRESH_S = 1.0  # read again in the background from this age (api/refresh_ahead.py)
_CACHE_MAX = 10_000


@dataclass(frozen=True)
class _KeyRow:
    principal: Principal
    expires_at: datetime
    revoked: bool


def user_departments(role: Role, department: str | None) -> frozenset[str] | None:
    """Department staff see their own department's objects only; the other roles are
    county-wide (the command centre, dispatchers, technicians, viewers): None."""
    if role is Role.DEPARTMENT_STAFF:
        return frozenset({department}) if department else frozenset()
    return None


class Identity:
    def __init__(self, pool: AsyncConnectionPool, throttle: Throttle) -> None:
        self.pool = pool
        self.throttle = throttle
        self._cache = RefreshAheadCache(CACHE_TTL_S, REFRESH_S, _CACHE_MAX)
        self._principals: dict[Principal, tuple[dict, Principal]] = {}

    def forget(self) -> None:
        self._cache.forget()
        self._principals.clear()

    async def _cached(self, key: tuple[str, str], load) -> Any:
        return await self._cache.get(key, load)

    async def user(self, token: Principal) -> Principal:
        """The user a verified token names, as the database has it now."""
        row = await self._cached(("user", token.name), lambda: self._load_user(token.name))
        if row is None or row["disabled"]:
            raise AuthError("this login is disabled or no longer exists")
        if row["auth_version"] != token.version:
            raise AuthError("token no longer valid (password changed or login disabled):"
                            " log in again")
        if token.session is not None:  # logged out, reused refresh token, idle: refused
            ended = await self._cached(("session", token.session),
                                       lambda: self._load_session(token.session))
            if ended is not None:
                raise AuthError(f"{ended}: log in again")
        # the principal made from this very row last time, if the row was not read again
        # since: building it (dataclasses.replace) was ~3 % of a small read's CPU
        made = self._principals.get(token)
        if made is not None and made[0] is row:
            return made[1]
        role = Role(row["role"])
        principal = replace(token, role=role,
                            departments=user_departments(role, row["department_id"]))
        if len(self._principals) >= _CACHE_MAX:
            self._principals.clear()
        self._principals[token] = (row, principal)
        return principal

    async def _load_session(self, session: str) -> str | None:
        async with self.pool.connection() as conn:
            return await session_revoked(conn, session)

    async def display(self, token: str, source: str) -> Principal:
        """A wall's read-only token (api/sessions.py), refused once revoked or expired."""
        async def load() -> Principal | AuthError:
            async with self.pool.connection() as conn:
                try:
                    return await display_principal(conn, token, source)
                except AuthError as err:
                    return err

        found = await self._cached(("display", hash_api_key(token) + source), load)
        if isinstance(found, AuthError):
            subjects = Subjects.of("key", token[:12], source)
            await self.throttle.check(subjects)
            await self.throttle.failed(subjects, found.detail)
            raise found
        return found

    async def _load_user(self, name: str) -> dict | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT role, department_id, disabled, auth_version FROM users"
                " WHERE username = %s", (name,))
            row = await cur.fetchone()
        if row is None:
            return None
        return dict(zip(("role", "department_id", "disabled", "auth_version"), row,
                        strict=True))

    async def api_key(self, key: str, source: str) -> Principal:
        key_hash = hash_api_key(key)
        row: _KeyRow | None = await self._cached(("key", key_hash),
                                                 lambda: self._load_key(key_hash))
        problem = ("unknown API key" if row is None else "API key revoked" if row.revoked
                   else "API key expired" if row.expires_at <= datetime.now(UTC) else None)
        if problem is None and row is not None:
            return row.principal
        # a valid key costs nothing extra; a wrong one is counted (and refused once over)
        subjects = Subjects.of("key", key[:12], source)
        await self.throttle.check(subjects)
        await self.throttle.failed(subjects, problem or "")
        raise AuthError(problem or "")

    async def _load_key(self, key_hash: str) -> _KeyRow | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, name, role, routes, departments, expires_at, revoked_at"
                " FROM api_keys WHERE key_hash = %s", (key_hash,))
            row = await cur.fetchone()
        if row is None:
            return None
        key_id, name, role, routes, departments, expires_at, revoked_at = row
        principal = Principal(
            name, Role(role), kind="api_key", key_id=key_id, routes=tuple(routes),
            departments=None if departments is None else frozenset(departments))
        return _KeyRow(principal, expires_at, revoked_at is not None)
