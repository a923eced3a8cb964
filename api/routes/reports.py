"""城市运行分析报告: generate on demand, list the archive, download PDF, DOCX or XLSX. A
download is a data export: audited with the report and format."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from api.deps import Conn, get_principal, get_settings, require
from api.middleware import write_audit
from api.schemas.indicators import ReportIn, ReportOut
from cityops.principal import Principal, Role
from cityops.settings import Settings
from indicators.reports import archive

router = APIRouter(tags=["reports"])
READERS = [Depends(require(Role.OPERATOR, Role.DISPATCHER, Role.VIEWER, Role.DATA_ADMIN))]
Caller = Annotated[Principal, Depends(get_principal)]
FILE_RESPONSES = {200: {"content": {t: {} for t in archive.FORMATS.values()},
                        "description": "the report file"}}


@router.get("/v1/reports", response_model=list[ReportOut], dependencies=READERS)
async def list_reports(conn: Conn) -> list[dict]:
    return await archive.listing(conn)


@router.post("/v1/reports", response_model=ReportOut, status_code=201, dependencies=READERS)
async def generate_report(conn: Conn, body: ReportIn, caller: Caller,
                          settings: Annotated[Settings, Depends(get_settings)]) -> dict:
    """Generate (or generate again) the report of the month or week containing `period`."""
    font = str(settings.report_font_file) if settings.report_font_file else None
    return await archive.generate(conn, body.kind, body.period, caller.name, font)


@router.get("/v1/reports/{report_id}/{fmt}", response_class=Response, dependencies=READERS,
            responses=FILE_RESPONSES)
async def download_report(conn: Conn, request: Request, caller: Caller,
                          report_id: Annotated[int, Path(ge=1)],
                          fmt: Literal["pdf", "docx", "xlsx"]) -> Response:
    title, data = await archive.file(conn, report_id, fmt)
    await write_audit(request.app.state.pool, actor=caller.name, actor_kind=caller.kind,
                      role=caller.role.value, action="GET /v1/reports/{report_id}/{fmt}",
                      target=f"report {report_id}", source=request.client.host
                      if request.client else "", outcome="exported", status=200,
                      detail={"format": fmt, "bytes": len(data)})
    name = quote(f"{title}.{fmt}")
    return Response(data, media_type=archive.FORMATS[fmt],
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"})
