"""Event categories and their time limits, written by the data administrator (and the system
administrator); every workflow role reads them at GET /v1/event-categories."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from api.deps import Conn, allow, audit_detail
from api.schemas.event_categories import CODE, CategoryFields, CategoryIn, TimeLimitIn
from api.schemas.events import Category, TimeLimit
from cityevents import categories
from cityops.principal import Role

router = APIRouter(tags=["events"], dependencies=[allow(Role.DATA_ADMIN)])
Code = Annotated[str, Path(pattern=CODE)]


@router.post("/v1/event-categories", response_model=Category, status_code=201)
async def create_category(body: CategoryIn, conn: Conn, request: Request) -> dict:
    audit_detail(request, category=body.code)
    return await categories.create_category(conn, body.code, body.model_dump(exclude={"code"}))


@router.put("/v1/event-categories/{code}", response_model=Category)
async def change_category(code: Code, body: CategoryFields, conn: Conn,
                          request: Request) -> dict:
    audit_detail(request, category=code)
    return await categories.change_category(conn, code, body.model_dump())


@router.put("/v1/event-time-limits", response_model=TimeLimit,
            responses={404: {"description": "no such category or department"}})
async def set_time_limit(body: TimeLimitIn, conn: Conn, request: Request) -> dict:
    """Set one limit; deadlines set from now on use it, running ones keep theirs."""
    audit_detail(request, **body.model_dump())
    return await categories.set_time_limit(conn, body.model_dump())
