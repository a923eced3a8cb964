"""The dispatcher's event page: a report found at intake to repeat an open event (same category
and address, the same day) shown with its merge suggestion and merged from the page (read back
from the API); a closed event's evaluation shown on the departments' evaluation terms."""

from __future__ import annotations

import uuid

from playwright.sync_api import Page, expect

from tests.e2e.conftest import Console, login, shoot


def _report(console: Console, address: str, description: str) -> int:
    made = console.client("dispatcher").post("/v1/events", json={
        "channel": "hotline", "category_code": "E01.03", "urgency": "normal",
        "address": address, "description": description})
    assert made.status_code == 201, made.text
    return made.json()["id"]


def test_dispatcher_merges_a_repeat_and_reads_an_evaluation(
        page: Page, console: Console, city_events: list[int]) -> None:
    address = f"相山路 {uuid.uuid4().hex[:6]} 号"
    first = _report(console, address, "路面油污一大片")
    repeat = _report(console, address, "相山路路面有油污")
    login(page, console, "dispatcher", f"/events/{repeat}")
    panel = page.locator("[data-test=merge-suggestions]")
    expect(panel).to_contain_text(f"#{repeat} 与 #{first} 疑似重复")
    panel.locator("[data-test=merge-accept]").dblclick()  # a double click sends one request
    expect(panel).to_contain_text("暂无与本事件相关的合并建议")
    expect(page.locator("[data-test=merge-error]")).to_have_count(0)  # no 409 from a 2nd click
    merged = console.client("dispatcher").get(f"/v1/events/{repeat}").json()
    assert merged["state"] == "cancelled" and merged["transitions"][-1]["action"] == "merge"
    kept = console.client("dispatcher").get(f"/v1/events/{first}").json()
    assert kept["state"] == "reported"
    assert [t["detail"].get("merged") for t in kept["transitions"]
            if t["action"] == "merged"] == [repeat]

    closed = city_events[-1]  # taken through every step by the seed, on time
    page.goto(f"/events/{closed}")
    evaluation = page.locator("[data-test=event-evaluation]")
    expect(evaluation.locator("[data-test=eval-closed]")).to_have_text("是")
    expect(evaluation.locator("[data-test=eval-disposed]")).to_have_text("是")
    expect(evaluation).to_contain_text("返工次数")
    shoot(page, console, "event-evaluation")
