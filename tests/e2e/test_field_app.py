"""城管通 on a phone (issue 18 item 4): Chromium emulating a 390-px wide touch screen with its
position in 濉溪县. An inspector reports an event with a photo and the position (a lost
connection keeps the draft and the retry, like a double tap, makes one event); a department
worker takes the task and answers with an after photo; the inspector checks the closure on
site and the dispatcher reads its result at the desk. No screen scrolls sideways; the manifest
and the service worker are served and the service worker controls /m/."""

from __future__ import annotations

import secrets
import struct
import uuid
import zlib
from collections.abc import Iterator

import psycopg
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.conftest import VIEWPORT, Console, login, shoot

POSITION = {"longitude": 116.77, "latitude": 33.92}  # 濉溪县城
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3,
         "is_mobile": True, "has_touch": True, "locale": "zh-CN",
         "geolocation": POSITION, "permissions": ["geolocation"]}


def _png(width: int = 64, height: int = 48) -> bytes:
    """A real image the browser can decode (the app resizes it before sending)."""
    raw = b"".join(b"\x00" + bytes((40, 160, 220)) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


PHOTO = {"name": "scene.png", "mimeType": "image/png", "buffer": _png()}


@pytest.fixture
def grid_cell(database_url: str) -> Iterator[str]:
    """A tiny grid cell around the phone's position: the API derives the event's grid."""
    code = f"m18-{uuid.uuid4().hex[:6]}"
    box = ("ST_Multi(ST_MakeEnvelope(116.7698, 33.9198, 116.7702, 33.9202, 4490))")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"INSERT INTO areas (kind, code, name, geom) VALUES ('grid', %s, %s, {box})",
                     (code, "测试网格"))
        yield code
        conn.execute("DELETE FROM areas WHERE kind = 'grid' AND code = %s", (code,))


def _phone(browser: Browser, console: Console) -> BrowserContext:
    context = browser.new_context(base_url=console.url, **PHONE)
    context.set_default_timeout(15_000)
    return context


def _sign_in(page: Page, name: str, password: str) -> None:
    page.goto("/m")  # redirected to /m/, inside the service worker's scope
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("form[data-test=login] button.primary")
    expect(page.locator(".ftabs")).to_be_visible()


def _fits(page: Page) -> None:
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= 390, f"{page.url} scrolls sideways: {width} px"


def _tap_target(page: Page, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    assert box and box["height"] >= 44, f"{selector} is too small to tap: {box}"


def _inspector(console: Console) -> tuple[str, str]:
    person = (f"inspector-{uuid.uuid4().hex[:6]}", secrets.token_urlsafe(12))
    answer = console.admin.post("/v1/users", json={"username": person[0],
                                                    "password": person[1], "role": "inspector"})
    assert answer.status_code == 201, answer.text
    return person


def _report(page: Page, context: BrowserContext, console: Console, cell: str,
            text: str) -> int:
    expect(page.locator("[data-test=position-value]")).to_contain_text("116.77000E 33.92000N")
    page.select_option("select[name=category]", "E01.02")
    page.fill("textarea[name=description]", text)
    page.fill("input[name=address]", "濉溪镇淮海路")
    photo = page.locator("input[data-test=report-photo]")
    photo.set_input_files({"name": "notes.txt", "mimeType": "text/plain", "buffer": b"x"})
    expect(page.locator("[data-test=report-photo-refused]")).to_contain_text("notes.txt")
    photo.set_input_files(PHOTO)
    expect(page.locator("[data-test=report-photo-thumb]")).to_have_count(1)
    _fits(page)
    _tap_target(page, "[data-test=report-submit]")
    shoot(page, console, "field-report")
    context.set_offline(True)  # the connection drops as the inspector taps send, twice
    page.dblclick("[data-test=report-submit]")
    expect(page.locator("[data-test=field-problem]")).to_contain_text("草稿已保存")
    expect(page.locator("[data-test=report-submit]")).to_have_text("重试")
    context.set_offline(False)
    page.click("[data-test=report-submit]")
    expect(page).to_have_url(f"{console.url}/m/reports")
    card = page.locator("[data-test=field-event]", has_text=text)
    expect(card).to_have_count(1)
    expect(card.locator("[data-test=field-state]")).to_have_text("上报")
    expect(card.locator("[data-test=field-grid]")).to_have_text(f"网格 {cell}")
    _fits(page)
    return int(card.get_attribute("data-event"))


def test_report_handle_and_check_on_a_phone(browser: Browser, console: Console,
                                            grid_cell: str) -> None:
    inspector = _inspector(console)
    text = f"垃圾堆放未清运 {uuid.uuid4().hex[:6]}"
    field = _phone(browser, console)
    worker_context = _phone(browser, console)
    desk_context = browser.new_context(viewport=VIEWPORT, base_url=console.url, locale="zh-CN")
    try:
        page = field.new_page()
        _sign_in(page, *inspector)
        event = _report(page, field, console, grid_cell, text)
        stored = console.admin.get("/v1/events", params={"channel": "inspector",
                                                         "limit": 500}).json()
        assert [e["id"] for e in stored if e["description"] == text] == [event]
        detail = console.admin.get(f"/v1/events/{event}").json()
        assert (detail["reporter"], detail["grid"]) == (inspector[0], grid_cell)
        assert (detail["longitude"], detail["latitude"]) == (116.77, 33.92)
        assert [a["content_type"] for a in detail["attachments"]] == ["image/jpeg"]

        dispatcher = console.client("dispatcher")
        for step, body in (("register", {}), ("dispatch", {"department_id": "urban-management"})):
            assert dispatcher.post(f"/v1/events/{event}/{step}", json=body).status_code == 200

        worker = worker_context.new_page()
        _sign_in(worker, *console.users["department_staff"])
        worker.click("[data-tab=tasks]")
        worker.locator(f"[data-test=field-tasks] [data-event='{event}']").click()
        expect(worker.locator("[data-test=case-photo]")).to_have_count(1)
        worker.click("[data-test=task-accept]")
        worker.fill("[data-test=field-feedback] textarea[name=note]", "已清运完毕")
        worker.locator("input[data-test=task-photo]").set_input_files(PHOTO)
        _fits(worker)
        shoot(worker, console, "field-task")
        worker.click("[data-test=task-submit]")
        expect(worker.locator("[data-test=task-finished]")).to_contain_text("已反馈")
        assert dispatcher.post(f"/v1/events/{event}/check", json={}).status_code == 200

        page.click("[data-tab=checks]")
        page.locator(f"[data-test=field-checks] [data-event='{event}']").click()
        expect(page.locator("[data-test=case-feedback]")).to_contain_text("已清运完毕")
        expect(page.locator("[data-test=case-photo]")).to_have_count(2)
        page.click("[data-result=pass]")
        page.fill("[data-test=field-check] textarea[name=note]", "现场已清理干净")
        page.click("[data-test=check-submit]")  # no photo yet: refused before sending
        expect(page.locator("[data-test=need-photo]")).to_be_visible()
        page.locator("input[data-test=check-photo]").set_input_files(PHOTO)
        expect(page.locator("[data-test=need-photo]")).to_have_count(0)
        _fits(page)
        shoot(page, console, "field-check")
        page.click("[data-test=check-submit]")
        expect(page).to_have_url(f"{console.url}/m/checks")
        expect(page.locator(f"[data-test=field-checks] [data-event='{event}']")).to_have_count(0)

        after = console.admin.get(f"/v1/events/{event}").json()
        steps = {t["action"]: t for t in after["transitions"]}
        assert steps["feedback"]["note"] == "已清运完毕"
        assert len(steps["feedback"]["attachment_ids"]) == 1
        check = steps["site_check"]
        assert (check["actor"], check["detail"]["result"], check["note"]) == (
            inspector[0], "pass", "现场已清理干净")
        assert len(check["attachment_ids"]) == 1 and after["state"] == "checking"
        # at the desk the 监督中心 reads the result in the timeline, then closes the case
        desk = desk_context.new_page()
        login(desk, console, "dispatcher", f"/events/{event}")
        expect(desk.locator("[data-test=event-timeline] li[data-action=site_check]"
                            " [data-test=site-check-result]")).to_have_text("核查通过")
        assert dispatcher.post(f"/v1/events/{event}/close", json={}).json()["state"] == "closed"

        # installable: the manifest and service worker are served, and the worker runs /m/
        scope = page.evaluate("Promise.race([navigator.serviceWorker.ready.then((r) => r.scope),"
                              " new Promise((ok) => setTimeout(() => ok('not ready'), 10000))])")
        assert scope == f"{console.url}/m/"
        assert page.locator("link[rel=manifest]").get_attribute("href") == \
            "/m/manifest.webmanifest"
        for phone in (page, worker):  # every word the pages asked for is in the dictionary
            assert phone.evaluate("[...window.__i18nMissing]") == []
    finally:
        for context in (field, worker_context, desk_context):
            context.close()
    manifest = console.admin.get("/m/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    assert manifest.json()["start_url"] == "/m/"
    assert {i["sizes"] for i in manifest.json()["icons"]} == {"192x192", "512x512"}
    worker_js = console.admin.get("/m/sw.js")
    assert worker_js.status_code == 200 and "javascript" in worker_js.headers["content-type"]
    icon = console.admin.get("/m/icon-192.png").content
    assert icon.startswith(b"\x89PNG") and struct.unpack(">II", icon[16:24]) == (192, 192)
