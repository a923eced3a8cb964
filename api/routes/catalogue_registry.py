"""一本账: governed datasets' catalogue entries kept current (`POST /v1/catalogue/sync`, also
`cityops catalogue sync` and after each layer model build), and their registration on the
national 公共数据资源登记 platform, exported in its fields as CSV or XLSX."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import psycopg
from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response

from api.deps import Conn, get_principal, get_settings, require
from api.routes.event_views import Now
from api.schemas.catalogue_registry import EntryOut, RegistrationIn, RegistrationOut, SyncedOut
from cityops.principal import Principal, Role
from cityops.settings import Settings
from datafoundation.catalogue import governed, registration
from datafoundation.dashboards.export import CSV_RESPONSE, csv_response, xlsx_response

router = APIRouter(tags=["catalogue"])
Caller = Annotated[Principal, Depends(get_principal)]
Code = Annotated[str, Path(max_length=64, examples=["3.01.001-0001"])]
PEOPLE = (Role.DISPATCHER, Role.DEPARTMENT_STAFF, Role.OPERATOR, Role.OPS_ENGINEER,
          Role.FIELD_TECHNICIAN, Role.VIEWER, Role.DATA_ADMIN)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPORT_RESPONSES = {200: {"content": {**CSV_RESPONSE[200]["content"], XLSX: {}},
                          "description": "JSON, or the platform's fields as CSV or XLSX"}}


@router.post("/v1/catalogue/sync", response_model=list[SyncedOut],
             dependencies=[Depends(require(Role.DATA_ADMIN))])
async def sync(settings: Annotated[Settings, Depends(get_settings)]) -> list[SyncedOut]:
    """Register or refresh every governed dataset's catalogue entry now."""
    def run() -> dict:
        with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as c:
            return governed.sync_all(c)

    done = await asyncio.to_thread(run)  # the data foundation's jobs are synchronous
    return [SyncedOut(dataset=d, resource_code=code, outcome=outcome)
            for d, (code, outcome) in done.items()]


@router.get("/v1/catalogue/registrations", response_model=list[EntryOut],
            responses=EXPORT_RESPONSES, dependencies=[Depends(require(*PEOPLE))])
async def registrations(
    conn: Conn, state: str | None = None, provider_id: str | None = None,
    format: Literal["json", "csv", "xlsx"] = "json",
) -> list[EntryOut] | Response:
    """Every catalogue entry with its registration state; `csv`/`xlsx`: in the national
    公共数据资源登记 platform's fields, for the 登记主体 to file."""
    rows = await registration.entries(conn, state, provider_id)
    if format == "json":
        return [EntryOut.model_validate(r) for r in rows]
    table = [registration.platform_row(r) for r in rows]
    if format == "xlsx":
        return xlsx_response(table, "public-data-registration.xlsx", sheet="公共数据资源登记")
    return csv_response(table, "public-data-registration.csv", columns=registration.HEADERS)


@router.post("/v1/catalogue/registrations/{code}", response_model=RegistrationOut,
             dependencies=[Depends(require(Role.DEPARTMENT_STAFF, Role.DATA_ADMIN))])
async def advance(code: Code, body: RegistrationIn, conn: Conn, caller: Caller,
                  now: Now) -> dict:
    """Record a registration step: the provider applies (申请); the data bureau records the
    platform's 受理, 审核, 公示, 赋码 (with the code) or a rejection (with the reason)."""
    return await registration.advance(conn, caller, code, body.state, body.registration_code,
                                      body.note, now)
