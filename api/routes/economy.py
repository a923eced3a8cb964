"""Industrial economy (规上工业): import indicator files, the analysis panel, meter mapping."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Path, Query, UploadFile
from fastapi.responses import Response

from api.deps import Conn, get_principal, get_settings, require
from api.schemas.economy import Batch, ImportOut, MeterIn, Overview
from cityops.errors import InvalidInput
from cityops.principal import Principal, Role
from cityops.settings import Settings
from datafoundation.dashboards.export import CSV_RESPONSE, Format, csv_response
from datafoundation.economy import analysis, store
from datafoundation.economy import queries as q

router = APIRouter(tags=["economy"])
Caller = Annotated[Principal, Depends(get_principal)]
# the statistics bureau's and the economy bureau's staff load data, and so does the county data
# bureau (data_admin: 数据汇聚, bringing departments' data onto the platform, cityops/principal.py);
# the command centre reads
LOADERS = (Role.DEPARTMENT_STAFF, Role.DATA_ADMIN)
READERS = (Role.VIEWER, Role.DISPATCHER, Role.DEPARTMENT_STAFF, Role.OPERATOR, Role.DATA_ADMIN)
SECTIONS = Literal["by_industry", "by_size", "by_ownership", "by_town", "top_by_revenue",
                   "top_by_profit", "loss_making"]


@router.post("/v1/economy/imports", status_code=201, response_model=ImportOut,
             dependencies=[Depends(require(*LOADERS))],
             responses={422: {"description": "rows rejected; `rows` lists each with reasons"}})
async def import_file(
    file: Annotated[UploadFile, File(description="CSV (UTF-8, GBK) or .xlsx")], conn: Conn,
    caller: Caller, settings: Annotated[Settings, Depends(get_settings)],
    dry_run: Annotated[bool, Query(description="check only, load nothing")] = False,
) -> ImportOut:
    """Load enterprise indicators, all rows or none (a bad row answers 422 with a per-row
    report)."""
    data = await file.read(settings.upload_max_bytes + 1)
    if len(data) > settings.upload_max_bytes:
        raise InvalidInput(f"the file is over {settings.upload_max_bytes} bytes")
    result = await store.import_file(conn, file.filename or "upload.csv", data, caller.name,
                                     dry_run)
    return ImportOut(batch_id=result.batch_id, rows_total=result.rows_total,
                     rows_loaded=result.rows_loaded, enterprises=result.enterprises,
                     encoding=result.encoding)


@router.get("/v1/economy/imports", response_model=list[Batch],
            dependencies=[Depends(require(*READERS))])
async def list_imports(conn: Conn, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list:
    return await q.batches(conn, limit)


@router.get("/v1/economy/overview", response_model=Overview,
            responses={**CSV_RESPONSE, 404: {"description": "nothing imported yet"}},
            dependencies=[Depends(require(*READERS))])
async def overview(
    conn: Conn,
    month: Annotated[date | None, Query(description="any day of the last month; default"
                                        " the latest imported")] = None,
    top: Annotated[int, Query(ge=1, le=100)] = 10,
    format: Format = "json", section: SECTIONS = "by_industry",
) -> Overview | Response:
    """Totals, structure, distribution by town, top and loss-making firms, 同口径 growth."""
    board = Overview.model_validate(await analysis.overview(conn, month, top))
    if format == "csv":
        rows = board.loss_making.list if section == "loss_making" else getattr(board, section)
        return csv_response(rows, f"economy-{section}-{board.period.end:%Y-%m}.csv")
    return board


@router.put("/v1/economy/enterprises/{code}/meter", status_code=204,
            dependencies=[Depends(require(*LOADERS))])
async def map_meter(
    code: Annotated[str, Path(min_length=18, max_length=18)], body: MeterIn, conn: Conn
) -> Response:
    """Take this enterprise's monthly electricity from a platform power meter."""
    await store.map_meter(conn, code, body.device, body.point)
    return Response(status_code=204)
