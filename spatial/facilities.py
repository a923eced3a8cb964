"""Cameras and facilities (migration 084): imported from a CSV of points, upserted by id, each
row refused with its number and reason like the other imports (spatial/importer.py); a point
outside the county is stored and listed. Columns: id, lon, lat, and optionally name, code
(a camera's channel code), department, kind (else the import's `--kind`)."""

from __future__ import annotations

import re
from collections.abc import Iterable

import psycopg
import psycopg.errors

from cityops.errors import InvalidInput
from spatial.importer import Report, _county_check, _record, check_pair, converter

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}$")
_KIND = re.compile(r"^[a-z][a-z_]{1,30}$")

_UPSERT = """
INSERT INTO facilities (id, kind, name, code, department_id, longitude, latitude)
VALUES (%(id)s, %(kind)s, %(name)s, %(code)s, %(department)s, %(lon)s, %(lat)s)
ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name,
    code = excluded.code, department_id = excluded.department_id,
    longitude = excluded.longitude, latitude = excluded.latitude, updated_at = now()
RETURNING NOT %(county)s OR EXISTS (SELECT FROM areas c WHERE c.kind = 'county'
                                    AND ST_Intersects(c.geom, facilities.geom))"""


def _row_values(row: dict, kind: str, to_stored) -> dict:
    fid, kind = str(row.get("id") or "").strip(), str(row.get("kind") or kind).strip()
    if not _ID.match(fid):
        raise InvalidInput(f"id {fid!r} is not an identifier (letters, digits, _.:-)")
    if not _KIND.match(kind):
        raise InvalidInput(f"kind {kind!r} is not a lower-case word (camera, hydrant...)")
    lon, lat = to_stored(*check_pair(row.get("lon"), row.get("lat")))
    return {"id": fid, "kind": kind, "name": str(row.get("name") or "").strip(),
            "code": str(row.get("code") or "").strip(), "lon": lon, "lat": lat,
            "department": str(row.get("department") or "").strip() or None}


def import_facilities(conn: psycopg.Connection, rows: Iterable[dict], *, kind: str,
                      layer: str, crs: str) -> Report:
    to_stored, report = converter(crs), Report(layer)
    with conn.transaction():
        county = _county_check(conn)
        for number, row in enumerate(rows, start=2):  # row 1 is the header
            number = row.get("_row", number)
            try:
                values = _row_values(row, kind, to_stored)
                with conn.transaction():  # a refused row leaves the others standing
                    inside = conn.execute(_UPSERT, {**values, "county": county}).fetchone()
            except InvalidInput as err:
                report.refused.append({"row": number, "reason": str(err)})
                continue
            except psycopg.errors.ForeignKeyViolation:
                report.refused.append({"row": number, "reason": "department "
                                       f"{values['department']!r} is not registered"})
                continue
            report.stored += 1
            if not inside[0]:
                report.outside_county.append({"row": number, "id": values["id"]})
        _record(conn, layer, f"facilities:{kind}", crs, report)
    return report
