"""GB/T 28181 registration records: the cameras a county's video platform (雪亮工程) lists in
its catalogue, imported into the map's camera register (facilities of kind 'camera').

The input is the platform's Catalog answer (GB/T 28181-2016 §9.5.2 / Annex A: one or more
`<Response><CmdType>Catalog</CmdType>...<DeviceList><Item>` bodies, as the platform sends them
in several SIP MESSAGEs or exports them; GB2312 or UTF-8, as declared). Each item's DeviceID
is a 20-digit code: centre (8: the 6-digit division code and 2), industry (2), type (3),
network (1), serial (6); types 131 (camera) and 132 (IP camera) are cameras, the rest
(platforms, NVRs, business groups, virtual organisations) are counted and left out. A camera
becomes the facility whose id and code are its DeviceID; its name, manufacturer, model,
civil code, address, parent and the platform's ON/OFF status go into its attributes.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import psycopg
from lxml import etree
from psycopg.types.json import Jsonb

from cityops.errors import InvalidInput
from spatial.facilities import import_facilities

CAMERA_TYPES = {"131": "camera", "132": "ip_camera"}
_CODE = re.compile(r"^\d{20}$")
_ATTRIBUTES = {"Manufacturer": "manufacturer", "Model": "model", "CivilCode": "civil_code",
               "Address": "address", "ParentID": "parent_id", "Status": "status",
               "Owner": "owner"}


def type_of(code: str) -> str:
    """The type digits (11th to 13th) of a GB/T 28181 code."""
    return code[10:13]


def parse_catalog(data: bytes) -> tuple[list[dict[str, Any]], Counter[str]]:
    """(the catalogue's items as dicts, in order; how many items were left out, by reason)."""
    items: list[dict[str, Any]] = []
    for body in _bodies(data):
        try:
            root = etree.fromstring(body, parser=etree.XMLParser(resolve_entities=False,
                                                                 no_network=True))
        except etree.XMLSyntaxError as err:
            raise InvalidInput(f"not a GB/T 28181 Catalog answer: {err}") from err
        if (root.findtext("CmdType") or "").strip() != "Catalog":
            raise InvalidInput("not a GB/T 28181 Catalog answer: CmdType is "
                               f"{root.findtext('CmdType')!r}")
        for item in root.iter("Item"):
            items.append({child.tag: (child.text or "").strip() for child in item
                          if isinstance(child.tag, str)})
    left_out: Counter[str] = Counter()
    cameras = []
    for number, item in enumerate(items, start=1):
        code = item.get("DeviceID", "")
        if _CODE.match(code) and type_of(code) not in CAMERA_TYPES:
            left_out[f"type {type_of(code)}"] += 1
            continue
        cameras.append({"_row": number, **item})
    return cameras, left_out


def _bodies(data: bytes) -> list[bytes]:
    """The XML documents in a file holding one or several (one per SIP MESSAGE)."""
    starts = [m.start() for m in re.finditer(rb"<\?xml", data)] or [0]
    return [data[a:b].strip() for a, b in zip(starts, [*starts[1:], len(data)], strict=True)]


def _row(item: dict[str, Any], department: str | None) -> dict[str, Any]:
    code = item["DeviceID"]
    return {"_row": item["_row"], "id": code, "kind": "camera", "name": item.get("Name", ""),
            "code": code, "department": department,
            "lon": _coordinate(item.get("Longitude")), "lat": _coordinate(item.get("Latitude"))}


def _coordinate(text: str | None) -> float | None:
    """A position, or None when the platform gives none (an unset position is often 0)."""
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value or None


def import_catalog(conn: psycopg.Connection, data: bytes, *, department: str | None,
                   layer: str, crs: str) -> dict[str, Any]:
    """Upsert the catalogue's cameras; the import's report with what was left out."""
    items, left_out = parse_catalog(data)
    cameras = [i for i in items if _CODE.match(i.get("DeviceID", ""))]
    bad_codes = [{"row": i["_row"], "reason": f"DeviceID {i.get('DeviceID', '')!r} is not a "
                  "20-digit GB/T 28181 code"} for i in items if i not in cameras]
    rows = [_row(item, department) for item in cameras]
    report = import_facilities(conn, rows, kind="camera", layer=layer, crs=crs).as_dict()
    report["refused"] = sorted(report["refused"] + bad_codes, key=lambda r: r["row"])
    refused = {r["row"] for r in report["refused"]}
    with conn.transaction():
        for item, row in zip(cameras, rows, strict=True):
            if item["_row"] in refused:
                continue
            attributes = {"source": "gb28181", "type": CAMERA_TYPES[type_of(row["code"])],
                          **{key: item[tag] for tag, key in _ATTRIBUTES.items()
                             if item.get(tag)}}
            conn.execute("UPDATE facilities SET attributes = attributes || %s WHERE id = %s",
                         (Jsonb(attributes), row["id"]))
    return {**report, "left_out": dict(left_out)}
