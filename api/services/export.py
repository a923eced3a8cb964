"""CSV answers: one header line of the model's fields, then one line per item."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from fastapi.responses import Response
from pydantic import BaseModel


def to_csv(items: Sequence[BaseModel], filename: str, model: type[BaseModel]) -> Response:
    out = io.StringIO()
    fields = list(model.model_fields)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    for item in items:
        row = item.model_dump(mode="json")
        writer.writerow(["" if row[f] is None else row[f] for f in fields])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
