"""Co-handling (协办) and 催办 in the console: a dispatcher adds a co-handling department to a
dispatched event and reminds it; that department's staff take the task and answer with a photo
(a refused file type is refused before it is sent); the API holds the result."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import VIEWPORT, Console, login, shoot

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_dispatcher_adds_and_reminds_a_co_handler_who_answers(
    page: Page, browser: Browser, console: Console, city_events: list[int]
) -> None:
    event = city_events[1]  # dispatched to water resources; staff are urban management
    login(page, console, "dispatcher", f"/events/{event}")
    tasks = page.locator("[data-test=event-tasks]")
    expect(tasks.locator("tr[data-task=lead]")).to_contain_text("主办")
    page.select_option("[data-test=task-department]", "urban-management")
    page.fill("[data-test=task-instructions]", "协助排查路面井盖")
    page.click("button[data-action=task-add]")
    row = tasks.locator("tr[data-department=urban-management]")
    expect(row.locator("[data-test=task-state]")).to_contain_text("待签收")
    row.locator("button[data-action=remind]").click()
    expect(row.locator("[data-test=task-reminders]")).to_have_text("已催办 1 次")
    expect(page.locator("[data-test=event-timeline] li[data-action=remind]")).to_be_visible()
    shoot(page, console, "event-cohandling")

    context = browser.new_context(viewport=VIEWPORT, base_url=console.url, locale="zh-CN")
    try:
        staff = context.new_page()
        login(staff, console, "department_staff", f"/events/{event}")
        mine = staff.locator("[data-test=event-tasks] tr[data-department=urban-management]")
        mine.locator("button[data-action=task-accept]").click()
        expect(mine.locator("[data-test=task-state]")).to_contain_text("处置中")
        photo = mine.locator("[data-test=task-photo]")
        photo.set_input_files({"name": "notes.txt", "mimeType": "text/plain", "buffer": b"x"})
        expect(staff.locator("[data-test=task-refused]")).to_contain_text("notes.txt")
        photo.set_input_files({"name": "after.png", "mimeType": "image/png", "buffer": PNG})
        mine.locator("[data-test=task-note]").fill("已协助更换井盖")
        mine.locator("button[data-action=task-feedback]").click()
        expect(mine.locator("[data-test=task-feedback]")).to_have_text("已协助更换井盖")
        # the photo opens with the person's token (a plain link was refused with 401)
        with staff.expect_popup() as opened:
            mine.locator("a.photo").first.click()
        expect(opened.value).to_have_url(re.compile(r"^blob:"))
    finally:
        context.close()
    stored = console.admin.get(f"/v1/events/{event}/tasks").json()
    co = next(t for t in stored["tasks"] if t["department_id"] == "urban-management")
    assert co["state"] == "done" and len(co["attachment_ids"]) == 1
    assert [r["number"] for r in stored["reminders"]] == [1]
    assert console.admin.get(f"/v1/events/{event}").json()["state"] == "dispatched"
