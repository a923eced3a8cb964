"""等保 identification and the security administrator's duties (docs/security.md):
a person enrols their own second factor; the security administrator (三员分立) assigns roles,
resets second factors and lifts lockouts. The system administrator (`admin`) does none of it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from api import totp
from api.deps import Caller, Conn, allow, allow_only, audit_detail, get_settings, identity
from api.deps import throttle as get_throttle
from api.queries import registry as rq
from cityops.errors import Forbidden, InvalidInput, NotFound
from cityops.principal import Role
from cityops.settings import Settings
from cityops.wire import ID_PATTERN

router = APIRouter(tags=["security"])
Username = Annotated[str, Path(pattern=ID_PATTERN)]
SECURITY = allow_only(Role.SECURITY_ADMIN)


class Enrolment(BaseModel):
    secret: str = Field(description="for typing into an app that cannot scan")
    otpauth_uri: str
    qr_svg: str = Field(description="the URI as a QR code (SVG)")


class CodeIn(BaseModel, extra="forbid"):
    code: str = Field(min_length=6, max_length=6, pattern=r"^\d{6}$")


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="each logs in once instead of a code;"
                                                  " shown only now")


class Lockout(BaseModel):
    subject: str
    failures: int
    last_failed_at: datetime
    locked_until: datetime


class UnlockIn(BaseModel, extra="forbid"):
    subject: str = Field(min_length=3, max_length=200,
                         examples=["account:li.wei", "address:10.0.0.7"])


class RoleIn(BaseModel, extra="forbid"):
    role: Role


@router.post("/v1/auth/totp", response_model=Enrolment, dependencies=[allow(*Role)])
async def start_enrolment(caller: Caller, conn: Conn,
                          settings: Annotated[Settings, Depends(get_settings)]) -> dict:
    """Start enrolling the caller's own second factor: scan the QR code, then confirm with
    a first code. Also allowed with the enrolment-only token a login gives a role that needs
    a second factor and has none."""
    if caller.kind != "user":
        raise Forbidden("a second factor belongs to a person, not to a key or a display")
    return await totp.start(conn, caller.name, settings)


@router.post("/v1/auth/totp/confirm", response_model=RecoveryCodes,
             dependencies=[allow(*Role)])
async def confirm_enrolment(body: CodeIn, caller: Caller, conn: Conn,
                            settings: Annotated[Settings, Depends(get_settings)]) -> dict:
    """The first code from the app turns the second factor on; log in again with it."""
    return {"recovery_codes": await totp.confirm(conn, caller.name, body.code, settings)}


@router.post("/v1/users/{username}/totp/reset", status_code=204, response_class=Response,
             dependencies=[SECURITY])
async def reset_second_factor(username: Username, conn: Conn, request: Request) -> Response:
    """A person who lost their device enrols again at the next login."""
    audit_detail(request, user=username)
    if not await totp.reset(conn, username):
        raise NotFound(f"user {username!r} has no second factor")
    return Response(status_code=204)


@router.put("/v1/users/{username}/role", dependencies=[SECURITY])
async def assign_role(username: Username, body: RoleIn, conn: Conn, caller: Caller,
                      request: Request) -> dict:
    """Roles are the security administrator's to give (三员分立); not their own."""
    audit_detail(request, user=username, role=body.role.value)
    if username == caller.name:
        raise Forbidden("a security administrator does not change their own role")
    await rq.one(conn, "username", "users", "username", username, "user")
    await conn.execute("UPDATE users SET role = %s WHERE username = %s",
                       (body.role.value, username))
    identity(request).forget()
    return {"username": username, "role": body.role.value}


@router.get("/v1/lockouts", response_model=list[Lockout], dependencies=[SECURITY])
async def list_lockouts(conn: Conn) -> list[dict]:
    """Accounts, key prefixes and addresses locked now after too many failures."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT subject, failures, last_failed_at, locked_until"
                          " FROM auth_failures WHERE locked_until > now() ORDER BY subject")
        return await cur.fetchall()


@router.post("/v1/lockouts/unlock", status_code=204, response_class=Response,
             dependencies=[SECURITY])
async def unlock(body: UnlockIn, request: Request) -> Response:
    """Lift a lockout at once (it also ends by itself after `auth_lockout_s`)."""
    audit_detail(request, subject=body.subject)
    if not body.subject.startswith(("account:", "key:", "address:")):
        raise InvalidInput("subject: account:<name>, key:<prefix> or address:<ip>")
    if not await get_throttle(request).unlock(body.subject):
        raise NotFound(f"{body.subject!r} has no failures recorded")
    return Response(status_code=204)
