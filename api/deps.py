"""Dependencies: the settings, the database pool, and the caller with a role check."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api.auth import Principal, Role, read_token
from cityops.errors import AuthError, Forbidden
from cityops.settings import Settings

oauth2 = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_pool(request: Request) -> AsyncConnectionPool:
    return request.app.state.pool


async def get_conn(
    pool: Annotated[AsyncConnectionPool, Depends(get_pool)],
) -> AsyncIterator[AsyncConnection]:
    async with pool.connection() as conn:
        yield conn


async def get_principal(
    settings: Annotated[Settings, Depends(get_settings)],
    token: Annotated[str | None, Depends(oauth2)],
) -> Principal:
    if not token:
        raise AuthError("log in first: send Authorization: Bearer <token>")
    return read_token(token, settings.jwt_secret.get_secret_value())


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency admitting the given roles; admin is always admitted."""
    allowed = {Role.ADMIN, *roles}

    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"role {principal.role.value} may not do this (allowed: {names})")
        return principal

    check.allowed_roles = frozenset(allowed)  # type: ignore[attr-defined]
    return check


Conn = Annotated[AsyncConnection, Depends(get_conn)]
AnyRole = Depends(require(*Role))
