"""Two console pieces of issue 18 in the browser: the dispatcher's event page shows the report's
photo (处置前) beside the disposal feedback's (处置后), read with the person's token, enlarges
one in the page and takes a check (核查) with a photo picked and checked before sending; the data
administrator checks an economy file with a bad row (its reason shown in Chinese), imports a
good one with a double click (one request) and finds it in the batch list."""

from __future__ import annotations

import re
import secrets
import struct
import uuid
import zlib
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from playwright.sync_api import Page, expect

from datafoundation.economy.parse import uscc_check_char
from tests.e2e.conftest import Console, login, shoot

DATA_PNG = re.compile(r"^data:image/png;base64,")


def _png(rgb: tuple[int, int, int], size: int = 24) -> bytes:
    """A real, decodable PNG of one colour (the browser must draw it, not just receive it)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(rgb) * size for _ in range(size))
    head = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def _ok(res: httpx.Response, status: int = 200) -> dict:
    assert res.status_code == status, res.text
    return res.json()


def _upload(client: httpx.Client, event: int, name: str, rgb: tuple[int, int, int]) -> int:
    return _ok(client.post(f"/v1/events/{event}/attachments",
                           files={"file": (name, _png(rgb), "image/png")}), 201)["id"]


@pytest.fixture(scope="module")
def photo_event(console: Console) -> int:
    """An event reported with a photo, handled by urban management with a photo: in feedback."""
    dispatcher, staff = console.client("dispatcher"), console.client("department_staff")
    event = _ok(dispatcher.post("/v1/events", json={
        "channel": "inspector", "category_code": "E01.02", "address": "濉溪县体育馆南侧",
        "description": "绿化带垃圾堆积", "external_ref": f"e2e-{uuid.uuid4().hex[:8]}"}), 201)["id"]
    # the phone app's order: the report, then its photos (attached to no step)
    _upload(dispatcher, event, "before.png", (200, 40, 40))
    for action, body in (("register", {}), ("dispatch", {"department_id": "urban-management"})):
        _ok(dispatcher.post(f"/v1/events/{event}/{action}", json=body))
    _ok(staff.post(f"/v1/events/{event}/accept", json={}))
    after = _upload(staff, event, "after.png", (40, 160, 60))
    _ok(staff.post(f"/v1/events/{event}/feedback", json={"note": "已清运",
                                                           "attachment_ids": [after]}))
    return event


def _drawn(page: Page, selector: str) -> None:
    """The thumbnail is visible and its picture came as a data: URL (fetched with the token)."""
    img = page.locator(selector).first
    expect(img).to_be_visible()
    expect(img).to_have_attribute("src", DATA_PNG)
    page.wait_for_function("i => i.complete && i.naturalWidth === 24", arg=img.element_handle(),
                           timeout=10000)


def test_event_page_shows_photos_before_and_after_and_checks_with_one(
    page: Page, console: Console, photo_event: int
) -> None:
    login(page, console, "dispatcher", f"/events/{photo_event}")
    _drawn(page, "[data-test=event-photos] [data-side=before] img")
    _drawn(page, "[data-test=event-photos] [data-side=after] img")
    _drawn(page, "[data-test=event-timeline] li[data-action=feedback] [data-test=photo-strip] img")
    shoot(page, console, "event-photos")
    page.locator("[data-side=after] button.thumb").click()
    viewer = page.locator("[data-test=photo-viewer]")
    expect(viewer.locator("img")).to_have_attribute("src", DATA_PNG)
    viewer.click()
    expect(viewer).to_have_count(0)
    picker = page.locator("[data-test=step-photos]")
    picker.set_input_files({"name": "notes.txt", "mimeType": "text/plain", "buffer": b"x"})
    expect(page.locator("[data-test=event-refused]")).to_contain_text(
        "notes.txt 不是 PNG、JPEG 或 PDF")
    picker.set_input_files({"name": "check.png", "mimeType": "image/png",
                            "buffer": _png((40, 40, 200))})
    page.locator("button[data-action=check]").click()
    _drawn(page, "[data-test=event-timeline] li[data-action=check] [data-test=photo-strip] img")
    detail = _ok(console.client("dispatcher").get(f"/v1/events/{photo_event}"))
    assert detail["state"] == "checking"
    check = next(tr for tr in detail["transitions"] if tr["action"] == "check")
    assert [a["filename"] for a in detail["attachments"] if a["id"] in check["attachment_ids"]] \
        == ["check.png"]


def _code(prefix: str, serial: int) -> str:
    first = f"91340621{prefix}{serial:03d}"[:17]
    return first + uscc_check_char(first)


HEADER = ("code,name,industry,town,size,ownership,month,revenue,value_added,profit,tax,"
          "electricity_kwh")


@pytest.fixture
def economy_files(console: Console, database_url: str) -> Iterator[tuple[bytes, bytes, list[str]]]:
    """(a file with a bad row 3, a good file, its codes), in a month no other test reads; the
    rows are removed afterwards: the session's database is shared with the rest of the suite."""
    prefix = uuid.uuid4().hex[:6].upper()  # hex digits are all USCC characters
    codes = [_code(prefix, n) for n in (1, 2)]

    def text(revenues: tuple[str, str]) -> bytes:
        rows = [f"{c},e2e企业{n},食品制造,濉溪镇,小型,私营,2019-01,{r},20,5,3,1000"
                for n, (c, r) in enumerate(zip(codes, revenues, strict=True))]
        return ("\r\n".join([HEADER, *rows]) + "\r\n").encode()
    yield text(("100", "abc")), text(("100", "120")), codes
    with psycopg.connect(database_url) as conn:
        batches = [r[0] for r in conn.execute(
            "SELECT DISTINCT batch_id FROM enterprise_indicators WHERE enterprise_code = ANY(%s)",
            (codes,))]
        conn.execute("DELETE FROM enterprise_indicators WHERE enterprise_code = ANY(%s)", (codes,))
        conn.execute("DELETE FROM enterprises WHERE code = ANY(%s)", (codes,))
        conn.execute("DELETE FROM import_batches WHERE id = ANY(%s)", (batches,))


def test_data_admin_checks_and_imports_an_economy_file(
    page: Page, console: Console, economy_files: tuple[bytes, bytes, list[str]]
) -> None:
    bad, good, _ = economy_files
    name, password = f"e2e-data-admin-{uuid.uuid4().hex[:6]}", secrets.token_urlsafe(12)
    _ok(console.admin.post("/v1/users", json={"username": name, "password": password,
                                              "role": "data_admin"}), 201)
    console.users["economy_admin"] = (name, password)
    login(page, console, "economy_admin", "/data?tab=economy")
    box = page.locator("[data-test=economy-import]")
    chooser = box.locator("[data-test=economy-file]")
    chooser.set_input_files({"name": "indicators.pdf", "mimeType": "application/pdf",
                             "buffer": b"%PDF"})
    expect(box.locator("[data-test=economy-problem]")).to_contain_text("不是 CSV 或 XLSX")
    expect(box.locator("button[data-action=economy-check]")).to_be_disabled()
    chooser.set_input_files({"name": "bad.csv", "mimeType": "text/csv", "buffer": bad})
    box.locator("button[data-action=economy-check]").click()
    expect(box.locator("[data-test=economy-rows] tr[data-row='3']")).to_contain_text(
        "营业收入 不是数字")
    expect(box.locator("[data-test=economy-rows] tbody tr")).to_have_count(1)
    file = f"e2e-{uuid.uuid4().hex[:6]}.csv"
    chooser.set_input_files({"name": file, "mimeType": "text/csv", "buffer": good})
    box.locator("button[data-action=economy-check]").click()
    expect(box.locator("[data-test=economy-checked]")).to_contain_text("2 行")
    posts = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST"
            and "/v1/economy/imports" in r.url and "dry_run=false" in r.url else None)
    box.locator("button[data-action=economy-import]").dblclick()
    row = box.locator("[data-test=economy-batches] tr", has_text=file)
    expect(row).to_contain_text(name)
    expect(row).to_contain_text("2 / 2")
    expect(row).to_contain_text("UTF-8")
    shoot(page, console, "data-economy-import")
    assert len(posts) == 1
    batches = [b for b in _ok(console.client("dispatcher").get("/v1/economy/imports"))
               if b["filename"] == file]
    assert len(batches) == 1 and batches[0]["imported_by"] == name
