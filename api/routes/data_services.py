"""数据服务: a granted consumer reads a governed dataset (fields, filters, keyset pages, JSON or
CSV), masked by sensitivity and grant; the provider scopes a grant; every call counted, and a
refusal audited naming what was not granted."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from api.deps import Conn, client_address, get_principal, require
from api.middleware import write_audit_conn
from api.routes.event_views import Now
from api.schemas.data_services import RowsOut, ScopeIn, ScopeOut, ServiceOut
from cityops.errors import Forbidden
from cityops.principal import Principal, Role
from datafoundation.dashboards.export import CSV_RESPONSE, Format, csv_response
from datafoundation.services import grants, hub, rows

router = APIRouter(tags=["data services"])
Caller = Annotated[Principal, Depends(get_principal)]
DatasetId = Annotated[str, Path(max_length=130, examples=["raw_scjg_registry.firms"])]
READERS = (Role.DISPATCHER, Role.DEPARTMENT_STAFF, Role.OPERATOR, Role.OPS_ENGINEER,
           Role.FIELD_TECHNICIAN, Role.VIEWER, Role.DATA_ADMIN)
ROWS_403 = {403: {"description": "no live grant, or a field or rows not granted (named)"}}


async def _audit(conn: Conn, request: Request, caller: Principal, dataset_id: str,
                 outcome: str, status: int, detail: dict) -> None:
    await write_audit_conn(
        conn, actor=caller.name, actor_kind=caller.kind, role=caller.role.value,
        action="GET /v1/datasets/{dataset_id}/rows", target=dataset_id,
        source=client_address(request), outcome=outcome, status=status, detail=detail)


async def _refused(conn: Conn, request: Request, caller: Principal, dataset_id: str,
                   err: Forbidden, now) -> None:
    """Count and audit the refused attempt; committed at once, because the error that follows
    rolls the request's transaction back. The message names fields, never values."""
    await rows.record_call(conn, dataset_id, caller, False, 0, now, refused=str(err))
    await _audit(conn, request, caller, dataset_id, "denied", 403, {"refused": str(err)})
    await conn.commit()


@router.get("/v1/datasets/{dataset_id}/rows", response_model=RowsOut,
            responses={**CSV_RESPONSE, **ROWS_403}, dependencies=[Depends(require(*READERS))])
async def dataset_rows(
    dataset_id: DatasetId, request: Request, conn: Conn, caller: Caller, now: Now,
    fields: Annotated[str | None, Query(max_length=4000, examples=["uscc,name,phone"])] = None,
    filter_: Annotated[list[str], Query(
        alias="filter", max_length=20,
        description="field:eq:value, field:in:a,b or field:range:low,high")] = [],  # noqa: B006
    after: Annotated[str | None, Query(max_length=2000)] = None,
    limit: Annotated[int, Query(ge=1, le=rows.MAX_LIMIT)] = 1000, format: Format = "json",
) -> RowsOut | Response:
    """One page of a dataset for a consumer with a live grant on its catalogue resource (or
    its provider's staff, the data bureau, admins), sensitive fields masked."""
    query = rows.RowsQuery(fields=fields, filters=filter_, after=after, limit=limit)
    try:
        page = await rows.read(conn, caller, dataset_id, query, now)
    except Forbidden as err:
        await _refused(conn, request, caller, dataset_id, err, now)
        raise
    await rows.record_call(conn, dataset_id, caller, True, len(page.rows), now)
    if page.unmasked:  # personal data read in the clear: who, which fields, how many rows
        await _audit(conn, request, caller, dataset_id, "ok", 200,
                     {"unmasked": page.unmasked, "rows": len(page.rows)})
    if format == "csv":
        res = csv_response(page.rows, f"{dataset_id}.csv", columns=page.fields)
        if page.next:
            res.headers["X-Next-Cursor"] = page.next
        return res
    return RowsOut(dataset=page.dataset, fields=page.fields, masked=page.masked,
                   rows=page.rows, next=page.next)


@router.put("/v1/catalogue/grants/{grant_id}/scope", response_model=ScopeOut,
            dependencies=[Depends(require(Role.DEPARTMENT_STAFF))])
async def grant_scope(grant_id: Annotated[int, Path(ge=1, lt=2**62)], body: ScopeIn,
                      conn: Conn, caller: Caller) -> dict:
    """The provider narrows a grant to fields and rows and names the fields it serves in the
    clear (all others sensitive are masked)."""
    return await grants.set_scope(conn, caller, grant_id, body.fields, body.unmasked_fields,
                                  body.row_scope)


@router.get("/v1/services", response_model=list[ServiceOut], responses=CSV_RESPONSE,
            dependencies=[Depends(require(*READERS))])
async def services(
    conn: Conn, now: Now, kind: Literal["dataset", "resource", "api"] | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Annotated[int, Query(ge=0)] = 0,
    format: Format = "json",
) -> list[ServiceOut] | Response:
    """The service registry (中枢): every data API with its calls (last day, last 7 days),
    refusals, consumers (30 days), live grants and last call; busiest first."""
    rows_ = [ServiceOut.model_validate(r)
             for r in await hub.services(conn, now, kind, q, limit, offset)]
    return csv_response(rows_, "services.csv") if format == "csv" else rows_
