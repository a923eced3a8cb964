"""Dependencies: the settings, the database pool, and the caller with a role check.

A caller is a person with a JWT (`Authorization: Bearer <jwt>`) or a platform service with an
API key (`X-API-Key: cok_...`, or the same key as a bearer token). `require(...)` admits roles
and, for API keys, only the routes in the key's scope. The principal is kept on the request so
that the audit log and the metering can name the caller.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api.auth import API_KEY_PREFIX, Principal, Role, hash_api_key, read_token
from api.docs import route_template
from api.services.gateways import Onboarding
from cityops.errors import AuthError, Forbidden
from cityops.settings import Settings

oauth2 = OAuth2PasswordBearer(
    tokenUrl="/v1/auth/token", auto_error=False,
    description="People: log in with POST /v1/auth/token and send the JWT.",
)
api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False,
    description="Platform services: an API key created by an admin (POST /v1/api-keys).",
)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_pool(request: Request) -> AsyncConnectionPool:
    return request.app.state.pool


async def get_conn(
    pool: Annotated[AsyncConnectionPool, Depends(get_pool)],
) -> AsyncIterator[AsyncConnection]:
    async with pool.connection() as conn:
        yield conn


async def _api_key_principal(pool: AsyncConnectionPool, key: str) -> Principal:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id, name, role, routes, departments, expires_at, revoked_at"
            " FROM api_keys WHERE key_hash = %s",
            (hash_api_key(key),),
        )
        row = await cur.fetchone()
    if row is None:
        raise AuthError("unknown API key")
    key_id, name, role, routes, departments, expires_at, revoked_at = row
    if revoked_at is not None:
        raise AuthError("API key revoked")
    if expires_at <= datetime.now(UTC):
        raise AuthError("API key expired")
    return Principal(
        name, Role(role), kind="api_key", key_id=key_id, routes=tuple(routes),
        departments=None if departments is None else frozenset(departments),
    )


async def get_principal(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    token: Annotated[str | None, Depends(oauth2)],
    api_key: Annotated[str | None, Depends(api_key_header)],
) -> Principal:
    if api_key or (token and token.startswith(API_KEY_PREFIX)):
        principal = await _api_key_principal(get_pool(request), api_key or token or "")
    elif token:
        principal = read_token(token, settings.jwt_secret.get_secret_value())
    else:
        raise AuthError("log in first: send Authorization: Bearer <token> or X-API-Key")
    request.state.principal = principal
    return principal


def require(*roles: Role) -> Callable[..., object]:
    """A dependency admitting the given roles; admin is always admitted. The route lists
    them in the OpenAPI document as `x-roles` (see api/docs.py)."""
    allowed = frozenset({Role.ADMIN, *roles})

    async def check(
        request: Request, principal: Annotated[Principal, Depends(get_principal)]
    ) -> Principal:
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"role {principal.role.value} may not do this (allowed: {names})")
        template = route_template(request.scope)
        if not principal.may_call(request.method, template):
            raise Forbidden(f"API key {principal.name} is not scoped for {request.method} "
                            f"{template}")
        return principal

    check.allowed_roles = allowed  # type: ignore[attr-defined]
    return check


def allow(*roles: Role) -> object:
    """`dependencies=[allow(Role.OPERATOR)]` on a route or router."""
    return Depends(require(*roles))


def check_department(principal: Principal, department: str | None, what: str) -> None:
    """An API key scoped to departments sees nothing of the others."""
    if not principal.sees_department(department):
        raise Forbidden(f"API key {principal.name} is not scoped for {what}")


# scope="function": the transaction commits before the answer leaves. With FastAPI's default
# ("request") it committed after the response was sent, so a client's next call could
# miss its own write (an event just reported answered 404 to its first step).
Conn = Annotated[AsyncConnection, Depends(get_conn, scope="function")]
AnyRole = Depends(require(*Role))
Caller = Annotated[Principal, Depends(get_principal)]


def audit_detail(request: Request, **detail: object) -> None:
    """What the audit row of this call records besides who, what, where and the outcome."""
    current = getattr(request.state, "audit_detail", {})
    request.state.audit_detail = {**current, **detail}


def onboarding(request: Request) -> Onboarding:
    return request.app.state.onboarding
