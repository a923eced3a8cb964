"""POST /v1/auth/token: the OAuth2 password flow, answering a short-lived JWT."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api.auth import issue_token, verify_password
from api.deps import audit_detail, client_address, get_pool, get_settings, throttle
from api.throttle import Subjects
from cityops.errors import AuthError
from cityops.principal import Principal, Role
from cityops.settings import Settings

router = APIRouter(tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int
    role: Role


@router.post("/v1/auth/token", response_model=Token,
             responses={401: {"description": "bad login"},
                        429: {"description": "too many failed attempts for the account or "
                                             "from the address; see Retry-After"}})
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
    token = issue_token(principal, settings.jwt_secret.get_secret_value(), settings.jwt_ttl_s)
    return Token(access_token=token, expires_in=settings.jwt_ttl_s, role=principal.role)
