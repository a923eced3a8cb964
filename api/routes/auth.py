"""POST /v1/auth/token: the OAuth2 password flow, answering a short-lived JWT."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api.auth import Principal, Role, issue_token, verify_password
from api.deps import Conn, get_settings
from cityops.errors import AuthError
from cityops.settings import Settings

router = APIRouter(tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int
    role: Role


@router.post("/v1/auth/token", response_model=Token, responses={401: {"description": "bad login"}})
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    conn: Conn,
    settings: Annotated[Settings, Depends(get_settings)],
) -> Token:
    cur = await conn.execute(
        "SELECT password_hash, role FROM users WHERE username = %s AND NOT disabled",
        (form.username,),
    )
    row = await cur.fetchone()
    if not verify_password(row[0] if row else None, form.password) or row is None:
        raise AuthError("wrong username or password")
    principal = Principal(form.username, Role(row[1]))
    token = issue_token(principal, settings.jwt_secret.get_secret_value(), settings.jwt_ttl_s)
    return Token(access_token=token, expires_in=settings.jwt_ttl_s, role=principal.role)
