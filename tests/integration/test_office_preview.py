"""Office files previewed as PDF (issue 18, the 部门工作台's files): a DOCX and an XLSX uploaded
together are converted by the real LibreOffice in one run in the background; their preview is a
PDF with the documents' words, audited; a damaged DOCX gets a recorded failure and stays
downloadable, and is converted again when a stopped process left its conversion; who may read
the resource may see its preview, nobody else."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import psycopg
import pytest
from docx import Document
from openpyxl import Workbook
from pypdf import PdfReader

from cityops.principal import Role
from tests.component.test_events_kit import Api, api_client, unique
from tests.helpers import wait_for

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def api(settings):
    with api_client(settings, datetime.now(UTC).replace(microsecond=0)) as api:
        api.own = api.department(unique("prev-water"), "县水利局")
        api.person("prev-prov", Role.DEPARTMENT_STAFF, api.own)
        api.person("prev-outsider", Role.DEPARTMENT_STAFF, api.department(unique("prev-x")))
        api.person("prev-viewer", Role.VIEWER)
        yield api


def _docx(words: str) -> bytes:
    document = Document()
    document.add_heading("River gauges register", 1)
    document.add_paragraph(words)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _xlsx(words: str) -> bytes:
    book = Workbook()
    book.active.append(["station", "level"])
    book.active.append([words, 3.25])
    book.active.column_dimensions["A"].width = 40  # the whole name printed, not cut at the cell
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _resource(api: Api) -> str:
    entry = {"classification": "2.03.002", "name": "河道水位站台账", "provider_id": api.own,
             "summary": "水位站的台账", "format": "docx",
             "items": [{"name": "站号", "type": "text"}],
             "sharing_type": "conditional", "sharing_conditions": "仅用于防汛调度",
             "update_cycle": "monthly", "published_on": "2026-11-01"}
    return api.ok("prev-prov", "POST", "/v1/catalogue/resources", 201, json=entry)["code"]


def _upload(api: Api, code: str, name: str, data: bytes, kind: str) -> dict:
    return api.ok("prev-prov", "POST", f"/v1/catalogue/resources/{code}/attachments", 201,
                  files={"file": (name, data, kind)})


def _settled(api: Api, path: str):
    """The preview's answer once it is no longer 202 (converting)."""
    def done():
        res = api.get("prev-prov", path)
        return res if res.status_code != 202 else None
    return wait_for(done, timeout_s=60, interval_s=0.5, what=f"{path} converted")


def _pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_office_files_previewed_as_pdf_or_failure_recorded(api: Api) -> None:
    code = _resource(api)
    # Chinese drawn with fonts-noto-cjk (infra/local/install.sh), extracted back by pypdf
    words, cell = f"濉溪县水位站 {unique('w')}", f"Station {unique('s')}"
    base = f"/v1/catalogue/resources/{code}/attachments"
    doc = _upload(api, code, "台账.docx", _docx(words), DOCX)
    sheet = _upload(api, code, "levels.xlsx", _xlsx(cell), XLSX)
    bad = _upload(api, code, "damaged.docx", b"PK\x03\x04" + b"\x00" * 400, DOCX)
    first = api.get("prev-prov", f"{base}/{doc['id']}/preview")
    assert first.status_code == 202 and first.json()["code"] == "converting"
    listed = {f["id"]: f for f in api.ok("prev-prov", "GET", base)}
    assert listed[doc["id"]]["preview"] == "converting"

    res = _settled(api, f"{base}/{doc['id']}/preview")
    assert res.status_code == 200, res.text
    assert res.headers["content-type"] == "application/pdf"
    assert res.headers["content-disposition"].startswith("inline;")
    assert "filename*=UTF-8''%E5%8F%B0%E8%B4%A6.pdf" in res.headers["content-disposition"]
    assert words in _pdf_text(res.content)
    res = _settled(api, f"{base}/{sheet['id']}/preview")
    assert res.status_code == 200 and cell in _pdf_text(res.content)

    failed = _settled(api, f"{base}/{bad['id']}/preview")
    assert failed.status_code == 422 and failed.json()["code"] == "preview_failed"
    assert "could not read" in failed.json()["detail"]
    listed = {f["id"]: f for f in api.ok("prev-prov", "GET", base)}
    assert (listed[bad["id"]]["preview"], listed[doc["id"]]["preview"]) == ("failed", "ready")
    assert "could not read" in listed[bad["id"]]["preview_failure"]
    original = api.get("prev-prov", f"{base}/{bad['id']}")
    assert original.status_code == 200 and original.content == b"PK\x03\x04" + b"\x00" * 400

    # a conversion left by a stopped API process (claimed long ago) is started again when the
    # list is asked for
    with psycopg.connect(api.url) as conn:
        conn.execute("UPDATE object_previews SET state = 'converting', reason = NULL,"
                     " started_at = now() - interval '1 hour' WHERE sha256 = %s", (bad["sha256"],))
    listed = {f["id"]: f for f in api.ok("prev-prov", "GET", base)}
    assert listed[bad["id"]]["preview"] == "converting"
    assert _settled(api, f"{base}/{bad['id']}/preview").status_code == 422

    # the same checks as the file itself: another department's staff and a viewer without a
    # grant are refused (conditional sharing), an unknown file is a 404
    assert api.get("prev-outsider", f"{base}/{doc['id']}/preview").status_code == 403
    assert api.get("prev-viewer", f"{base}/{doc['id']}/preview").status_code == 403
    assert api.get("prev-prov", f"{base}/999999999/preview").status_code == 404
    with psycopg.connect(api.url) as conn:
        rows = conn.execute(
            "SELECT actor, detail->>'filename', detail->>'served_as' FROM audit_log"
            " WHERE action = 'GET /v1/catalogue/resources/{code}/attachments/{object_id}/preview'"
            " AND target LIKE %s ORDER BY id", (f"%/{code}/%",)).fetchall()
    assert rows == [("prev-prov", "台账.docx", "application/pdf"),
                    ("prev-prov", "levels.xlsx", "application/pdf")]


def test_types_without_conversion(api: Api) -> None:
    code = _resource(api)
    base = f"/v1/catalogue/resources/{code}/attachments"
    pdf = _upload(api, code, "map.pdf", b"%PDF-1.4\n% a scan\n", "application/pdf")
    text = _upload(api, code, "notes.txt", "水位 3.2 米".encode(), "text/plain")
    res = api.get("prev-prov", f"{base}/{pdf['id']}/preview")
    assert res.status_code == 200 and res.content == b"%PDF-1.4\n% a scan\n"
    refused = api.get("prev-prov", f"{base}/{text['id']}/preview")
    assert refused.status_code == 422 and "has no preview" in refused.json()["detail"]
