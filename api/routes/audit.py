"""Exporting the audit log (等保 安全审计): the audit administrator only, as CSV or JSON lines,
with each row's chain columns (`seq`, `prev_hash`, `hash`) so an export can be checked on its
own; every export is itself audited before the first row leaves."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Literal

import anyio
import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from api.audit_chain import verify
from api.deps import Caller, allow_only, client_address, get_pool, get_settings
from api.middleware import write_audit
from api.queries.audit import AuditFilter
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
    filters: Annotated[AuditFilter, Depends()],
    format: Literal["csv", "json"] = "csv",
) -> StreamingResponse:
    """Rows in chain order; `json` is one JSON object per line; the filters of GET
    /v1/audit."""
    where, params = filters.where()
    await write_audit(get_pool(request), actor=caller.name, actor_kind=caller.kind,
                      role=caller.role.value, action="audit.export", target="/v1/audit/export",
                      source=client_address(request), outcome="ok", status=200,
                      detail={"format": format, **{k: v for k, v in vars(filters).items()
                                                   if v not in (None, "")}})

    async def body() -> AsyncIterator[bytes]:
        if format == "csv":
            yield _csv_line(COLUMNS).encode()
        async for row in _rows(request, where, params):
            if format == "csv":
                yield _csv_line(row).encode()
            else:
                yield orjson.dumps(dict(zip(COLUMNS, row, strict=True))) + b"\n"

    media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
    name = f"audit-{datetime.now():%Y%m%d-%H%M%S}.{'csv' if format == 'csv' else 'jsonl'}"
    return StreamingResponse(body(), media_type=media,
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


class ChainVerdict(BaseModel):
    ok: bool
    checked: int
    detail: str
    first_broken_seq: int | None = None
    first_broken_id: int | None = None


@router.get("/v1/audit/verify", response_model=ChainVerdict)
async def verify_chain(request: Request) -> ChainVerdict:
    """`cityops audit verify` from the console: recompute the hash chain in one snapshot and
    name the first broken entry. It reads every row since the anchor: seconds per million."""
    url = get_settings(request).database_url.get_secret_value()
    verdict = await anyio.to_thread.run_sync(verify, url)
    return ChainVerdict(ok=verdict.ok, checked=verdict.checked, detail=verdict.detail,
                        first_broken_seq=verdict.first_broken_seq,
                        first_broken_id=verdict.first_broken_id)
