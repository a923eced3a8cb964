"""Dependencies: the settings, the database pool, and the caller with a role check.

A caller is a person with a JWT (`Authorization: Bearer <jwt>`) or a platform service with an
API key (`X-API-Key: cok_...`, or the same key as a bearer token). `require(...)` admits roles
and, for API keys, only the routes in the key's scope; then the department check of the route
(api/departments.py) for a caller limited to departments. Who the caller is and what it may do
are read from the database on each request (api/identity.py). The principal is kept on the
request so that the audit log and the metering can name the caller.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api import departments
from api.auth import DISPLAY_PREFIX, read_token
from api.docs import route_template
from api.identity import Identity
from api.services.gateways import Onboarding
from api.throttle import Throttle
from cityops.api_keys import API_KEY_PREFIX
from cityops.errors import AuthError, Forbidden
from cityops.principal import WORK_ROLES, Principal, Role
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


async def settings_now(request: Request) -> Settings:
    """get_settings as an async dependency: FastAPI runs a plain `def` dependency in its
    thread pool, a thread hop on every request (a map tile's profile, docs/map.md)."""
    return request.app.state.settings


def get_pool(request: Request) -> AsyncConnectionPool:
    return request.app.state.pool


async def get_conn(request: Request) -> AsyncIterator[AsyncConnection]:
    # no sync sub-dependency (get_pool): a thread hop on every request (see settings_now)
    async with request.app.state.pool.connection() as conn:
        yield conn


def identity(request: Request) -> Identity:
    """This process's reader of callers' current rights (made on first use, after the
    lifespan has opened the pool and the live hub that relays changes)."""
    state = request.app.state
    found = getattr(state, "identity", None)
    if found is None:
        found = state.identity = Identity(get_pool(request), throttle(request))
        hub = getattr(state, "hub", None)
        if hub is not None:
            hub.watchers.append(found.forget)
    return found


def throttle(request: Request) -> Throttle:
    state = request.app.state
    found = getattr(state, "throttle", None)
    if found is None:
        found = state.throttle = Throttle(get_pool(request), state.settings)
    return found


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


async def get_principal(
    request: Request,
    settings: Annotated[Settings, Depends(settings_now)],
    token: Annotated[str | None, Depends(oauth2)],
    api_key: Annotated[str | None, Depends(api_key_header)],
) -> Principal:
    if api_key or (token and token.startswith(API_KEY_PREFIX)):
        principal = await identity(request).api_key(api_key or token or "",
                                                    client_address(request))
    elif token and token.startswith(DISPLAY_PREFIX):
        principal = await identity(request).display(token, client_address(request))
    elif token:
        principal = await identity(request).user(
            read_token(token, settings.jwt_secret.get_secret_value()))
    else:
        raise AuthError("log in first: send Authorization: Bearer <token> or X-API-Key")
    request.state.principal = principal
    return principal


def require(*roles: Role, admin: bool = True) -> Callable[..., object]:
    """A dependency admitting the given roles; admin (the system administrator) too unless
    `admin=False`: the security and audit administrators' own routes (三员分立,
    docs/security.md). The route lists them in the OpenAPI document as `x-roles`."""
    allowed = frozenset({Role.ADMIN, *roles} if admin else roles)

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
        if principal.departments is not None:
            async with get_pool(request).connection() as conn:
                await departments.guard(conn, principal, request.method, template,
                                        dict(request.path_params))
        return principal

    check.allowed_roles = allowed  # type: ignore[attr-defined]
    return check


def allow(*roles: Role) -> object:
    """`dependencies=[allow(Role.OPERATOR)]` on a route or router."""
    return Depends(require(*roles))


def allow_only(*roles: Role) -> object:
    """A route of the separated duties only: the system administrator is not admitted."""
    return Depends(require(*roles, admin=False))


def check_department(principal: Principal, department: str | None, what: str) -> None:
    """A caller limited to departments sees nothing of the others."""
    if not principal.sees_department(department):
        raise Forbidden(f"{principal.name} is not allowed {what}: its department is "
                        f"{department or 'none'}")


# scope="function": the transaction commits before the answer leaves. With FastAPI's default
# ("request") it committed after the response was sent, so a client's next call could
# miss its own write (an event just reported answered 404 to its first step).
Conn = Annotated[AsyncConnection, Depends(get_conn, scope="function")]
AnyRole = Depends(require(*WORK_ROLES))  # not the security or audit administrator
Caller = Annotated[Principal, Depends(get_principal)]


def audit_detail(request: Request, **detail: object) -> None:
    """What the audit row of this call records besides who, what, where and the outcome."""
    current = getattr(request.state, "audit_detail", {})
    request.state.audit_detail = {**current, **detail}


def onboarding(request: Request) -> Onboarding:
    return request.app.state.onboarding
