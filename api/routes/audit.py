"""Exporting the audit log (等保 安全审计): the audit administrator only, as CSV or JSON lines,
with each row's chain columns (`seq`, `prev_hash`, `hash`) so an export can be checked on its
own; every export is itself audited before the first row leaves."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from api.deps import Caller, allow_only, client_address, get_pool
from api.middleware import write_audit
from cityops.principal import Role

router = APIRouter(tags=["access"], dependencies=[allow_only(Role.AUDIT_ADMIN)])
COLUMNS = ("seq", "id", "time", "actor", "actor_kind", "role", "action", "target", "source",
           "outcome", "status", "detail", "prev_hash", "hash")


async def _rows(request: Request, where: str, params: list) -> AsyncIterator[tuple]:
    pool = get_pool(request)
    # a server-side cursor: an export of any size streams in batches
    async with pool.connection() as conn, conn.cursor(name="audit_export") as cur:
        await cur.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_log"
                          f" WHERE {where} ORDER BY seq", params)
        async for row in cur:
            yield row


def _csv_line(values: tuple) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(["" if v is None else orjson.dumps(v).decode()
                              if isinstance(v, dict) else v for v in values])
    return out.getvalue()


@router.get("/v1/audit/export", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}})
async def export_audit(
    request: Request, caller: Caller,
    format: Literal["csv", "json"] = "csv",
    since: datetime | None = None, until: datetime | None = None,
    actor: Annotated[str | None, Query(max_length=100)] = None,
) -> StreamingResponse:
    """Rows in chain order; `json` is one JSON object per line."""
    clauses, params = ["true"], []
    for clause, value in (("time >= %s", since), ("time < %s", until), ("actor = %s", actor)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    await write_audit(get_pool(request), actor=caller.name, actor_kind=caller.kind,
                      role=caller.role.value, action="audit.export", target="/v1/audit/export",
                      source=client_address(request), outcome="ok", status=200,
                      detail={"format": format, "since": since, "until": until, "actor": actor})

    async def body() -> AsyncIterator[bytes]:
        if format == "csv":
            yield _csv_line(COLUMNS).encode()
        async for row in _rows(request, " AND ".join(clauses), params):
            if format == "csv":
                yield _csv_line(row).encode()
            else:
                yield orjson.dumps(dict(zip(COLUMNS, row, strict=True))) + b"\n"

    media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
    name = f"audit-{datetime.now():%Y%m%d-%H%M%S}.{'csv' if format == 'csv' else 'jsonl'}"
    return StreamingResponse(body(), media_type=media,
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})
