"""The 决策 page's 综合评价 tab in Chromium: the county's six months against each other with
the MOHURD items as columns, and a town's own months when one is chosen — never a league
table of places."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.conftest import Console, login


def test_the_evaluation_tab_shows_a_place_against_its_past(page: Page, console: Console) -> None:
    login(page, console, "viewer", "/decisions")
    page.click("[data-tab=evaluation]")
    table = page.locator("[data-test=evaluation]")
    expect(table).to_contain_text("城市形象 · 干净")
    expect(table).to_contain_text("群众满意度 · 满意度")
    expect(table.locator("tr[data-period]")).to_have_count(6)
    expect(page.locator("body")).to_contain_text("重在纵向对比")
    page.select_option("[data-test=evaluation-form] select[name=by]", "town")
    page.fill("[data-test=evaluation-form] input[name=area]", "no-such-town")
    page.click("[data-test=evaluation-form] button.primary")
    # a town with no events yet: every month scored on volume alone, 满意度 not entered
    expect(table.locator("tr[data-period]").first).to_contain_text("—")
    expect(table.locator("tr[data-period]")).to_have_count(6)
