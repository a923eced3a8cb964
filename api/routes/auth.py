"""Logging in and staying in: the OAuth2 password flow, refresh, logout (api/sessions.py)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from api import sessions
from api.auth import issue_token, verify_password
from api.deps import (
    Caller,
    allow,
    audit_detail,
    client_address,
    get_pool,
    get_settings,
    identity,
    throttle,
)
from api.sessions import Opened
from api.throttle import Subjects
from cityops.errors import AuthError
from cityops.principal import Principal, Role
from cityops.settings import Settings

router = APIRouter(tags=["auth"])
_LOGIN_ERRORS = {401: {"description": "bad login"},
                 429: {"description": "too many failed attempts for the account or from the"
                                      " address; see Retry-After"}}


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="seconds the access token lives")
    role: Role
    refresh_token: str = Field(description="exchange at POST /v1/auth/refresh for a new pair;"
                                           " each is good for one exchange")
    session_expires_at: datetime
    idle_timeout_s: int = Field(description="a session not refreshed for this long ends")


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=10, max_length=200)


def _answer(opened: Opened, settings: Settings) -> Token:
    access = issue_token(opened.principal, settings.jwt_secret.get_secret_value(),
                         settings.jwt_ttl_s)
    return Token(access_token=access, expires_in=settings.jwt_ttl_s,
                 role=opened.principal.role, refresh_token=opened.refresh_token,
                 session_expires_at=opened.expires_at,
                 idle_timeout_s=settings.session_idle_timeout_s)


@router.post("/v1/auth/token", response_model=Token, responses=_LOGIN_ERRORS)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
) -> Token:
    """Failed logins are counted per account and per client address (in the database, for
    every API process); over the limit the answer is 429 until the window ends, the same for
    names that exist and names that do not."""
    audit_detail(request, username=form.username[:100])
    subjects = Subjects.of("account", form.username, client_address(request))
    gate = throttle(request)
    await gate.check(subjects)
    # one pooled connection at a time (not the route's own for the whole call): a flood of
    # logins must not hold the pool while waiting for a second connection
    async with get_pool(request).connection() as conn:
        cur = await conn.execute(
            "SELECT password_hash, role, auth_version FROM users"
            " WHERE username = %s AND NOT disabled", (form.username,),
        )
        row = await cur.fetchone()
    # argon2 costs tens of ms of CPU: off the event loop, which serves every other caller
    if not await asyncio.to_thread(verify_password, row[0] if row else None, form.password) \
            or row is None:
        await gate.failed(subjects, "wrong username or password")
        raise AuthError("wrong username or password")
    await gate.succeeded(subjects)
    principal = Principal(form.username, Role(row[1]), version=row[2])
    async with get_pool(request).connection() as conn:
        opened = await sessions.open_session(conn, principal, client_address(request),
                                             settings)
    return _answer(opened, settings)


@router.post("/v1/auth/refresh", response_model=Token, responses=_LOGIN_ERRORS)
async def refresh(body: RefreshIn, request: Request,
                  settings: Annotated[Settings, Depends(get_settings)]) -> Token:
    """A new access token and a new refresh token for a refresh token not used before. A
    refresh token used a second time ends its whole session (it was copied), as do an idle
    session, a new password and a disabled login."""
    source = client_address(request)
    subjects = Subjects.of("key", body.refresh_token[:12], source)
    gate = throttle(request)
    await gate.check(subjects)
    async with get_pool(request).connection() as conn:
        try:
            opened = await sessions.refresh(conn, body.refresh_token, source, settings)
        except AuthError as err:
            await gate.failed(subjects, err.detail)
            raise
    audit_detail(request, session=opened.principal.session)
    request.state.audit_actor = opened.principal.name
    return _answer(opened, settings)


@router.post("/v1/auth/logout", status_code=204, response_class=Response,
             dependencies=[allow(*Role)])
async def logout(caller: Caller, request: Request) -> Response:
    """Ends the caller's session: its access token and every refresh token of it stop
    working at once."""
    if caller.session is not None:
        audit_detail(request, session=caller.session)
        async with get_pool(request).connection() as conn:
            await sessions.end_session(conn, caller.session, "logged out")
        identity(request).forget()  # this process at once, the others by NOTIFY
    return Response(status_code=204)
