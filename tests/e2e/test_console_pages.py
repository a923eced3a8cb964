"""The cloud page (capacity, servers, a job's progress as it happens) and the data pages
(catalogue portal, ingestion dashboard)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import seed
from tests.e2e.conftest import Console, login, shoot


@pytest.fixture
def cloud_rows(database_url: str) -> Iterator[dict]:
    seeded = seed.cloud(database_url)
    yield seeded
    seed.remove_cloud(database_url, seeded)


def test_cloud_page_follows_a_running_job_to_its_end(
    page: Page, console: Console, cloud_rows: dict, database_url: str
) -> None:
    login(page, console, "ops_engineer", "/cloud")
    expect(page.locator("[data-test=servers]")).to_contain_text("slj-flood-model")
    job = page.locator(f"tr[data-job='{cloud_rows['running']}']")
    expect(job).to_contain_text("60%")
    expect(job).to_contain_text("install the agent")  # its events, streamed
    shoot(page, console, "cloud")
    seed.finish_job(database_url, cloud_rows["running"])
    expect(job).to_contain_text("100%", timeout=15_000)
    expect(job).to_contain_text("成功")


def test_data_pages_show_the_catalogue_and_the_ingestion_figures(
    page: Page, console: Console
) -> None:
    login(page, console, "admin", "/data")
    resources = page.locator("[data-test=resources] tr.clickable")
    expect(resources.first).to_be_visible()  # the platform registers its own datasets
    page.fill("[data-test=catalogue-search]", "audio")
    page.keyboard.press("Enter")
    expect(resources.first).to_contain_text("audio", ignore_case=True)
    resources.first.click()
    shoot(page, console, "data-catalogue")
    page.click("[data-tab=ingestion]")
    readings = page.locator("[data-test=ingestion] .kpi").nth(1).locator(".kpi-value")
    expect(readings).not_to_have_text("0")
    shoot(page, console, "data-ingestion")
