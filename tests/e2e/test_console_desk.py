"""部门工作台 as the urban-management staff's day: a data request approved for fewer days than
asked (the grant's term read back from the API), a resource refused before sending and then
registered, an oversize file refused in Chinese before it is sent, an image uploaded and
previewed, a DOCX converted to PDF and opened; no raw keys on the tabs used. A 校核纠错 task
commented and resolved."""

from __future__ import annotations

import io
import re
import secrets
import struct
import zlib
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from docx import Document
from playwright.sync_api import Page, expect

from datafoundation.governance import Field, register_dataset
from datafoundation.quality import load_rules, run_dataset
from tests.e2e.conftest import Console, login, shoot
from tests.e2e.test_console_i18n import RAW_KEY, VISIBLE_TEXT

STAFF_DEPT = "urban-management"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _png() -> bytes:
    """A real 160x90 PNG, a gradient (the browser must draw it)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    rows = b"".join(b"\x00" + b"".join(bytes((x, 120 + y, 255 - x)) for x in range(160))
                    for y in range(90))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 160, 90, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _waiting_request(console: Console) -> tuple[str, int]:
    """A conditional resource of urban management, and another department's application."""
    staff = console.client("department_staff")
    made = staff.post("/v1/catalogue/resources", json={
        "classification": "2.05.001", "name": "城区井盖台账", "provider_id": STAFF_DEPT,
        "summary": "井盖位置与权属", "format": "xlsx", "items": [{"name": "编号", "type": "text"}],
        "sharing_type": "conditional", "sharing_conditions": "仅用于城市部件巡查",
        "update_cycle": "monthly", "published_on": "2026-11-01"})
    assert made.status_code == 201, made.text
    name, password = f"desk-app-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    assert console.admin.post("/v1/users", json={
        "username": name, "password": password, "role": "department_staff",
        "department": "water-resources"}).status_code == 201
    applicant = httpx.Client(base_url=console.url, timeout=10)
    token = applicant.post("/v1/auth/token", data={"username": name, "password": password})
    applicant.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    asked = applicant.post(f"/v1/catalogue/resources/{made.json()['code']}/requests", json={
        "application": "flood-inspect", "purpose": "汛期排查积水点周边井盖", "days": 30})
    assert asked.status_code == 201 and asked.json()["request"]["state"] == "with_provider"
    return made.json()["code"], asked.json()["request"]["id"]


def _docx(words: str) -> bytes:
    document = Document()
    document.add_paragraph(words)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _no_raw_keys(page: Page) -> None:
    shown = set(m.group(0) for m in RAW_KEY.finditer(page.evaluate(VISIBLE_TEXT)))
    assert not {s for s in shown if s.startswith(("desk.", "merge.", "eval."))}, shown
    assert not page.evaluate("[...(window.__i18nMissing || [])]")


def test_department_staff_decide_register_and_upload(page: Page, console: Console,
                                                     tmp_path: Path) -> None:
    code, request_id = _waiting_request(console)
    login(page, console, "department_staff", "/desk")
    expect(page.locator("[data-test=desk-department]")).to_have_text("城管局")
    item = page.locator(f"[data-request='{request_id}']").first
    item.locator("input[name=days]").fill("31")
    item.locator("[data-test=approve]").click()  # more than asked: refused before sending
    expect(item.locator("[data-field=days]")).to_have_text("授权天数须为 1 至 30 的整数")
    item.locator("input[name=days]").fill("7")
    item.locator("[data-test=approve]").dblclick()  # a double click sends one request
    decided = page.locator(f"[data-test=decided] [data-request='{request_id}']")
    expect(decided).to_contain_text("已同意")
    _no_raw_keys(page)
    (grant,) = console.client("department_staff").get(
        "/v1/catalogue/grants", params={"resource_code": code}).json()
    term = datetime.fromisoformat(grant["expires_at"]) - datetime.fromisoformat(grant["granted_at"])
    assert term == timedelta(days=7)

    page.click("[data-tab=resources]")
    page.click("[data-test=new-resource]")
    form = page.locator("[data-test=resource-form]")
    form.locator("input[name=classification]").fill("2.5")
    form.locator("[data-test=save-resource]").click()
    expect(form.locator("[data-field=classification]")).to_contain_text("分类码格式为 类.项.目")
    expect(form.locator("[data-field=sharing_conditions]")).to_be_visible()
    form.locator("input[name=classification]").fill("2.05.002")
    form.locator("input[name=name]").fill("道路照明设施档案")
    form.locator("input[name=format]").fill("pdf")
    form.locator("input[name=sharing_conditions]").fill("仅用于夜间巡查")
    form.locator("[data-test=save-resource]").click()
    row = page.locator("[data-test=resources] tr", has_text="道路照明设施档案")
    expect(row).to_have_class(re.compile(r"\bpicked\b"))
    _no_raw_keys(page)

    big = tmp_path / "全景照片.png"
    with big.open("wb") as out:
        out.truncate(21 * 1024 * 1024)
    page.set_input_files("[data-test=file-input]", str(big))
    expect(page.locator("[data-test=file-error]")).to_have_text(
        "全景照片.png 大小为 21.0 MB，超过 20 MB 上限，未上传")
    expect(page.locator("[data-test=upload]")).to_be_disabled()
    page.set_input_files("[data-test=file-input]", files=[
        {"name": "路灯.png", "mimeType": "image/png", "buffer": _png()}])
    page.click("[data-test=upload]")
    preview = page.locator("[data-test=preview] img")
    expect(preview).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    expect(preview).to_have_js_property("naturalWidth", 160)  # drawn, not a broken image
    expect(page.locator("[data-test=files]")).to_contain_text("路灯.png")
    # an office file: converted to PDF in the background, then opened in the browser's viewer
    page.set_input_files("[data-test=file-input]", files=[
        {"name": "巡查记录.docx", "mimeType": DOCX, "buffer": _docx("夜间巡查 路灯 L-001 不亮")}])
    page.click("[data-test=upload]")
    office = page.locator("[data-test=files] tr", has_text="巡查记录.docx")
    expect(office.locator("[data-test=converting]")).to_have_text("正在转换为 PDF…")
    expect(office.locator("[data-test=view-pdf]")).to_have_text("预览（PDF）", timeout=40000)
    with page.expect_popup() as opened:
        office.locator("[data-test=view-pdf]").click()
    opened.value.wait_for_url(re.compile(r"^blob:"))
    opened.value.close()
    shoot(page, console, "desk")


def _failing_task(database_url: str) -> str:
    """A dataset of urban management with a blank lamp number: one open 校核纠错 task."""
    dataset = f"raw_e2e_desk.lamps_{secrets.token_hex(3)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS raw_e2e_desk")
        conn.execute(f"CREATE TABLE {dataset} (id int PRIMARY KEY, lamp text)")
        conn.execute(f"INSERT INTO {dataset} VALUES (1, 'L-001'), (2, '')")
        register_dataset(conn, dataset, "路灯台账", "raw", STAFF_DEPT, primary_key=["id"],
                         fields=[Field("id", "integer"), Field("lamp", "text")])
        load_rules(conn, "rules:\n  - {name: lamp_present, kind: not_null, columns: [lamp]}\n",
                   "e2e", dataset)
    run_dataset(database_url, dataset)
    return dataset


def test_department_staff_answer_a_quality_task(page: Page, console: Console,
                                               database_url: str) -> None:
    dataset = _failing_task(database_url)
    login(page, console, "department_staff", "/desk?tab=quality")
    task = page.locator(".desk-item", has_text=dataset)
    task.locator("[data-test=resolve]").click()  # no note: refused before sending
    expect(task.locator("[data-field=note]")).to_have_text("请先填写说明")
    task.locator("input[name=note]").fill("2 号路灯编号待核实")
    task.locator("[data-test=comment]").click()
    expect(task.locator("[data-test=task-notes]")).to_contain_text("意见：2 号路灯编号待核实")
    task.locator("input[name=note]").fill("已补录 2 号路灯编号")
    task.locator("[data-test=resolve]").click()
    expect(task).to_have_count(0)  # closed: no longer among the open ones
    (closed,) = [t for t in console.client("department_staff").get(
        "/v1/quality/tasks", params={"dataset": dataset}).json()]
    assert (closed["state"], closed["resolution"]) == ("closed", "已补录 2 号路灯编号")
    page.click("[data-lang=en]")
    page.select_option("[data-test=quality-state]", "closed")
    done = page.locator(".desk-item", has_text=dataset)
    expect(done).to_contain_text("Resolved by department-staff")
    expect(done.locator("[data-test=task-notes]")).to_contain_text("Comment: 2 号路灯编号待核实")
