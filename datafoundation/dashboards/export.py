"""CSV export shared by every list and dashboard route (`?format=csv`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Literal

from fastapi.responses import Response
from pydantic import BaseModel

Format = Literal["json", "csv"]
CSV_RESPONSE = {200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with ?format=csv"}}


def _flat(row: BaseModel | dict) -> dict:
    data = row.model_dump(mode="json") if isinstance(row, BaseModel) else dict(row)
    flat: dict = {}
    for key, value in data.items():
        if isinstance(value, dict):  # one level of nesting becomes parent.child columns
            flat |= {f"{key}.{k}": v for k, v in value.items() if not isinstance(v, list | dict)}
        elif not isinstance(value, list):
            flat[key] = value
    return flat


def csv_response(
    rows: Iterable[BaseModel | dict], filename: str, columns: Sequence[str] | None = None
) -> Response:
    """UTF-8 with a byte-order mark, which spreadsheet programs need to show Chinese text."""
    flat = [_flat(r) for r in rows]
    header = list(columns or (flat[0].keys() if flat else []))
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.DictWriter(out, fieldnames=header, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(flat)
    return Response(
        out.getvalue(), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def xlsx_response(rows: Sequence[dict], filename: str, sheet: str = "Sheet1") -> Response:
    """An XLSX workbook of one sheet (openpyxl), header row first, for forms filed by hand."""
    import openpyxl  # only the export needs it

    book = openpyxl.Workbook()
    ws = book.active
    ws.title = sheet
    if rows:
        header = list(rows[0])
        ws.append(header)
        for row in rows:
            ws.append([row.get(h) for h in header])
    out = io.BytesIO()
    book.save(out)
    return Response(
        out.getvalue(),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
