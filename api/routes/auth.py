"""Logging in and staying in: the OAuth2 password flow with the password rules and the second
factor (docs/security.md), refresh and logout (api/sessions.py), a new password."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field, SecretStr

from api import passwords, sessions, totp
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
from cityops.errors import AuthError, PasswordExpired, SecondFactorRequired
from cityops.principal import Principal, Role
from cityops.settings import Settings

router = APIRouter(tags=["auth"])
ENROL_TTL_S = 600  # an enrolment-only token: enough to scan a QR code and type a code
_LOGIN_ERRORS = {401: {"description": "bad login"},
                 429: {"description": "too many failed attempts for the account or from the"
                                      " address; see Retry-After"}}


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="seconds the access token lives")
    role: Role
    refresh_token: str | None = Field(
        None, description="exchange at POST /v1/auth/refresh for a new pair; each is good for"
                          " one exchange (none with an enrolment-only token)")
    session_expires_at: datetime | None = None
    idle_timeout_s: int = Field(description="a session not refreshed for this long ends")
    password_expires_at: datetime | None = None
    warnings: list[str] = Field(default_factory=list,
                                description="e.g. the password expires soon")
    second_factor_enrolment_required: bool = Field(
        False, description="this role needs a second factor: the token only enrols one"
                           " (POST /v1/auth/totp), then log in again with its code")


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=10, max_length=200)


class PasswordChange(BaseModel, extra="forbid"):
    username: str = Field(min_length=1, max_length=100)
    password: SecretStr = Field(min_length=1, max_length=200, description="the current one")
    new_password: SecretStr = Field(min_length=1, max_length=200)
    otp: str | None = Field(None, max_length=20, description="when a second factor is set")


@dataclass(frozen=True)
class _User:
    password_hash: str
    role: Role
    version: int
    changed_at: datetime
    second_factor: bool


def _answer(opened: Opened, settings: Settings, warnings: list[str],
            password_expires_at: datetime | None) -> Token:
    access = issue_token(opened.principal, settings.jwt_secret.get_secret_value(),
                         settings.jwt_ttl_s)
    return Token(access_token=access, expires_in=settings.jwt_ttl_s,
                 role=opened.principal.role, refresh_token=opened.refresh_token,
                 session_expires_at=opened.expires_at,
                 idle_timeout_s=settings.session_idle_timeout_s, warnings=warnings,
                 password_expires_at=password_expires_at)


async def _user(request: Request, username: str) -> _User | None:
    # one pooled connection at a time (not the route's own for the whole call): a flood of
    # logins must not hold the pool while waiting for a second connection
    async with get_pool(request).connection() as conn:
        cur = await conn.execute(
            "SELECT password_hash, role, auth_version, password_changed_at, EXISTS (SELECT 1"
            " FROM user_totp t WHERE t.username = u.username AND t.confirmed_at IS NOT NULL)"
            " FROM users u WHERE username = %s AND NOT disabled", (username,))
        row = await cur.fetchone()
    return None if row is None else _User(row[0], Role(row[1]), *row[2:])


async def _proven(request: Request, subjects: Subjects, username: str, password: str,
                  otp: str | None) -> _User:
    """The user if the password (and the second factor, when set) are right; every wrong
    answer is counted and audited, the same for names that exist and names that do not."""
    gate = throttle(request)
    await gate.check(subjects)
    user = await _user(request, username)
    # argon2 costs tens of ms of CPU: off the event loop, which serves every other caller;
    # an unknown name is verified against a dummy hash: the same time, the same answer
    if not await asyncio.to_thread(verify_password, user.password_hash if user else None,
                                   password) or user is None:
        await gate.failed(subjects, "wrong username or password")
        raise AuthError("wrong username or password")
    if user.second_factor:
        if not otp:
            raise SecondFactorRequired("send the code of your authenticator app (or a"
                                       " recovery code) as `otp`")
        async with get_pool(request).connection() as conn:
            good = await totp.verify(conn, username, otp, get_settings(request))
        if not good:
            await gate.failed(subjects, "wrong second factor")
            raise AuthError("wrong second factor code")
    return user


@router.post("/v1/auth/token", response_model=Token, responses=_LOGIN_ERRORS)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    otp: Annotated[str | None, Form(max_length=20, description="the TOTP code (or a recovery"
                                                               " code) when one is set")] = None,
) -> Token:
    """Failed logins are counted per account and per client address (in the database, for
    every API process); at the limit the subject is locked (429 with Retry-After) until a
    security administrator unlocks it or `auth_lockout_s` ends, the same for names that exist
    and names that do not. A user with a second factor sends its code as `otp`; a role that
    needs one and has none gets a token that can only enrol one."""
    audit_detail(request, username=form.username[:100])
    subjects = Subjects.of("account", form.username, client_address(request))
    user = await _proven(request, subjects, form.username, form.password, otp)
    expires_at, expired, warn = passwords.expiry(user.changed_at, datetime.now(UTC), settings)
    if expired:
        raise PasswordExpired(f"the password expired at {expires_at:%Y-%m-%d %H:%M} UTC: set a"
                              " new one at POST /v1/auth/password")
    await throttle(request).succeeded(subjects)
    warnings = [f"the password expires at {expires_at:%Y-%m-%d %H:%M} UTC: change it"
                " before then"] if warn else []
    principal = Principal(form.username, user.role, version=user.version)
    if user.role.value in settings.totp_required_roles and not user.second_factor:
        enrol = Principal(form.username, user.role, version=user.version, enrol_only=True)
        return Token(access_token=issue_token(enrol, settings.jwt_secret.get_secret_value(),
                                              ENROL_TTL_S),
                     expires_in=ENROL_TTL_S, role=user.role, warnings=warnings,
                     idle_timeout_s=settings.session_idle_timeout_s,
                     second_factor_enrolment_required=True, password_expires_at=expires_at)
    async with get_pool(request).connection() as conn:
        opened = await sessions.open_session(conn, principal, client_address(request),
                                             settings)
    return _answer(opened, settings, warnings, expires_at)


@router.post("/v1/auth/password", status_code=204, response_class=Response,
             responses=_LOGIN_ERRORS)
async def change_password(body: PasswordChange, request: Request,
                          settings: Annotated[Settings, Depends(get_settings)]) -> Response:
    """A person sets a new password with the current one (also once it has expired). Every
    session and token of the person ends; the new password must follow the rules and not be
    one of the last few."""
    audit_detail(request, username=body.username[:100])
    request.state.audit_actor = body.username[:100]
    subjects = Subjects.of("account", body.username, client_address(request))
    await _proven(request, subjects, body.username, body.password.get_secret_value(),
                  body.otp)
    async with get_pool(request).connection() as conn:
        await passwords.set_password(conn, body.username,
                                     body.new_password.get_secret_value(), settings)
    identity(request).forget()
    return Response(status_code=204)


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
    return _answer(opened, settings, [], None)


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
