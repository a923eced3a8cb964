"""The 决策 page in Chromium: the leader's cockpit shows each class of indicators with a red
one listed as needing a decision, and a click on it opens its card with the series chart and
its 环比; the event analysis tab draws its tables."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg
from playwright.sync_api import Page, expect

from cityevents.calendar import COUNTY_TZ, now_utc
from indicators import compute, store
from indicators.model import last_complete
from tests.e2e.conftest import Console, login, shoot


def _indicators(database_url: str) -> None:
    """The starter set, and 立案率 (CG.01.005) computed red for the last weeks."""
    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await store.load(conn, store.starter(), "e2e")
            ind = await store.get(conn, "CG.01.005")
            now = now_utc()
            await conn.execute(
                "INSERT INTO events (channel, reporter, category_code, urgency, description,"
                " reported_at) SELECT 'hotline', 'e2e', 'E01.02', 'normal', 'e2e', %s"
                " FROM generate_series(1, 3)",
                (last_complete("weekly", now, COUNTY_TZ) + timedelta(hours=1),))
            await compute.backfill(conn, ind, now - timedelta(weeks=3), now)

    # Playwright's sync API runs a loop in this thread: the database work runs in another
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def test_the_cockpit_leads_to_the_evidence(page: Page, console: Console,
                                           database_url: str) -> None:
    _indicators(database_url)
    login(page, console, "viewer", "/decisions")
    classes = page.locator("[data-test=cockpit-classes]")
    for name in ("城市运行", "城市管理", "数据资源", "工业经济"):
        expect(classes).to_contain_text(name)
    red = page.locator("[data-test=red-indicators] tr", has_text="立案率")
    expect(red).to_be_visible()
    shoot(page, console, "decisions-cockpit")
    red.click()
    expect(page).to_have_url(f"{console.url}/decisions?tab=indicators&code=CG.01.005")
    card = page.locator(".panel", has_text="CG.01.005")
    expect(card).to_contain_text("统计期内上报事件中已立案")
    expect(card.locator("canvas")).to_be_visible()
    expect(card).to_contain_text("环比")
    page.click("[data-tab=analysis]")
    expect(page.locator("[data-test=hotspots], .empty").first).to_be_visible()
    expect(page.locator("body")).to_contain_text("部门处置效能")


def test_a_report_is_generated_from_the_console(page: Page, console: Console) -> None:
    login(page, console, "dispatcher", "/decisions?tab=reports")
    page.select_option("[data-test=report-form] select[name=kind]", "weekly")
    page.click("[data-test=report-form] button.primary")
    row = page.locator("[data-test=reports] tr[data-report]", has_text="周分析报告").first
    expect(row).to_be_visible(timeout=60_000)
    with page.expect_download() as download:
        row.locator("button", has_text="PDF").click()
    assert download.value.suggested_filename.endswith(".pdf")
