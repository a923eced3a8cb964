"""城市运行分析报告 through the API on real PostgreSQL: generated for a seeded month, the PDF's
extracted text, the DOCX's tables and the XLSX's cells hold the same figures; a download is
audited as an export; regenerating replaces the files in place."""

import io
from datetime import datetime, timedelta

import psycopg
import pytest
from docx import Document
from openpyxl import load_workbook
from pypdf import PdfReader

from cityevents.calendar import COUNTY_TZ
from cityops.principal import Role
from tests.component.indicator_kit import load_starter
from tests.component.test_events_kit import Api, api_client, unique

MONTH = datetime(2033, 3, 1, tzinfo=COUNTY_TZ)


@pytest.fixture(scope="module")
def api(settings):
    load_starter(settings.database_url.get_secret_value())
    with api_client(settings, MONTH + timedelta(days=40)) as api:
        api.person("rep-viewer", Role.VIEWER)
        api.person("rep-admin", Role.DATA_ADMIN)
        api.tag = unique("R").replace("-", "").upper()[:7]
        with psycopg.connect(api.url) as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO event_categories (code, kind, major, minor) VALUES"
                         " (%s, 'incident', '测试', '报告测试')", (f"{api.tag}.E",))
            cur.executemany(
                "INSERT INTO events (channel, reporter, category_code, urgency, description,"
                " reported_at) VALUES ('hotline', 'seed', %s, 'normal', 'seed', %s)",
                [(f"{api.tag}.E", MONTH + timedelta(days=d, hours=3)) for d in range(7)])
        yield api


def test_a_monthly_report_holds_its_figures_in_every_format(api: Api) -> None:
    query = (f"SELECT count(*) FROM metrics.events WHERE category_code = '{api.tag}.E'"
             " AND reported_at >= :start AND reported_at < :end")
    api.ok("rep-admin", "PUT", "/v1/indicators/CG.01.903", json={
        "code": "CG.01.903", "name": "报告测试案件数", "class_code": "CG.01",
        "definition": "测试", "query": query, "unit": "件", "frequency": "monthly",
        "direction": "down", "warning": 5, "alarm": 6})
    api.ok("rep-admin", "POST", "/v1/indicators/CG.01.903/compute",
           params={"since": MONTH.isoformat()})
    made = api.ok("rep-viewer", "POST", "/v1/reports", 201,
                  json={"kind": "monthly", "period": "2033-03-15"})
    assert made["title"] == "濉溪县城市运行月度分析报告（2033年03月）"
    pdf = api.get("rep-viewer", f"/v1/reports/{made['id']}/pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    words = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "城市运行月度分析报告" in words and "报告测试案件数" in words and "7件" in words
    assert "红灯" in words and "工业经济" in words
    doc = Document(io.BytesIO(api.get("rep-viewer", f"/v1/reports/{made['id']}/docx").content))
    cells = [c.text for t in doc.tables for row in t.rows for c in row.cells]
    assert "CG.01.903 报告测试案件数" in cells and "7件" in cells
    book = load_workbook(io.BytesIO(api.get("rep-viewer",
                                            f"/v1/reports/{made['id']}/xlsx").content))
    values = [v for ws in book.worksheets for row in ws.iter_rows(values_only=True) for v in row]
    assert "CG.01.903 报告测试案件数" in values and "7件" in values
    with psycopg.connect(api.url) as conn:
        audited = conn.execute("SELECT count(*) FROM audit_log WHERE outcome = 'exported'"
                               " AND target = %s", (f"report {made['id']}",)).fetchone()[0]
    assert audited == 3


def test_generating_again_replaces_and_a_bad_format_is_refused(api: Api) -> None:
    first = api.ok("rep-viewer", "POST", "/v1/reports", 201,
                   json={"kind": "weekly", "period": "2033-03-09"})
    again = api.ok("rep-viewer", "POST", "/v1/reports", 201,
                   json={"kind": "weekly", "period": "2033-03-10"})
    assert again["id"] == first["id"] and again["period_start"] == first["period_start"]
    assert "03月07日至03月13日" in again["title"]
    assert api.get("rep-viewer", f"/v1/reports/{first['id']}/odt").status_code == 422
    assert api.get("rep-viewer", "/v1/reports/999999/pdf").status_code == 404
    listed = [r["id"] for r in api.ok("rep-viewer", "GET", "/v1/reports")]
    assert first["id"] in listed
