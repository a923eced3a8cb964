"""Walls and big screens registered as displays, each with a long-lived read-only token
(api/sessions.py): the security administrator issues and revokes them (三员分立)."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field, field_validator

from api.auth import DISPLAY_PREFIX, new_secret_token
from api.deps import Caller, Conn, allow_only, audit_detail, get_settings, identity
from api.queries import registry as rq
from cityops.errors import Conflict
from cityops.principal import Role
from cityops.settings import Settings
from cityops.wire import ID_PATTERN

router = APIRouter(tags=["access"], dependencies=[allow_only(Role.SECURITY_ADMIN)])
COLUMNS = ("id, name, prefix, addresses::text[] AS addresses, created_by, created_at,"
           " expires_at, revoked_at")


class DisplayIn(BaseModel, extra="forbid"):
    id: str = Field(pattern=ID_PATTERN, description="e.g. wall-command-centre")
    name: str = Field(min_length=1, max_length=200)
    addresses: list[str] | None = Field(
        None, max_length=50, description="networks the display calls from (CIDR); the token"
                                         " is refused elsewhere. None: any address")
    expires_in_days: int | None = Field(None, ge=1, le=3650,
                                        description="default: display_token_days")

    @field_validator("addresses")
    @classmethod
    def _networks(cls, value: list[str] | None) -> list[str] | None:
        for text in value or []:
            ipaddress.ip_network(text, strict=False)  # ValueError names the bad entry
        return value


class Display(BaseModel):
    id: str
    name: str
    prefix: str
    addresses: list[str] | None
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class DisplayCreated(Display):
    token: str = Field(description="shown once; open the console at /?wall=1#display=<token>")


@router.get("/v1/displays", response_model=list[Display])
async def list_displays(conn: Conn) -> list[dict]:
    cur = await conn.execute(f"SELECT {COLUMNS} FROM displays ORDER BY id")
    names = [c.name for c in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]


@router.post("/v1/displays", response_model=DisplayCreated, status_code=201)
async def create_display(body: DisplayIn, conn: Conn, caller: Caller, request: Request,
                         settings: Annotated[Settings, Depends(get_settings)]) -> dict:
    """Register a wall or big screen; its token is in this answer only (its hash is kept)."""
    audit_detail(request, display=body.id, addresses=body.addresses)
    token, prefix, token_hash = new_secret_token(DISPLAY_PREFIX)
    days = body.expires_in_days or settings.display_token_days
    try:
        await conn.execute(
            "INSERT INTO displays (id, name, token_hash, prefix, addresses, created_by,"
            " expires_at) VALUES (%s, %s, %s, %s, %s::cidr[], %s, %s)",
            (body.id, body.name, token_hash, prefix, body.addresses, caller.name,
             datetime.now(UTC) + timedelta(days=days)))
    except psycopg.errors.UniqueViolation as err:
        raise Conflict(f"display {body.id!r} exists already") from err
    return {**await rq.one(conn, COLUMNS, "displays", "id", body.id, "display"), "token": token}


@router.post("/v1/displays/{display}/revoke", response_model=Display)
async def revoke_display(display: Annotated[str, Path(pattern=ID_PATTERN)], conn: Conn,
                         request: Request) -> dict:
    """The display's token stops working at once (this process now, the others by NOTIFY)."""
    audit_detail(request, display=display)
    row = await rq.one(conn, COLUMNS, "displays", "id", display, "display")
    if row["revoked_at"] is not None:  # type: ignore[index]
        raise Conflict(f"display {display!r} is already revoked")
    await conn.execute("UPDATE displays SET revoked_at = now() WHERE id = %s", (display,))
    identity(request).forget()
    return await rq.one(conn, COLUMNS, "displays", "id", display, "display")  # type: ignore
