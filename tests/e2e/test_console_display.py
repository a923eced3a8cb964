"""A registered display (issue #18 item 5): the big screen opened with its display token keeps
reading past the access token's life (3 s here) and never shows the login form; a person's
console renews its short access token with the refresh token while they are active."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Response

from tests.api_kit import bearer, ok, unique
from tests.conftest import Processes
from tests.e2e.conftest import VIEWPORT, _build_console
from tests.helpers import free_port, port_open, wait_for

ACCESS_TTL_S = 3
PASSWORD = "Display-Test-2026!x"


@pytest.fixture
def short_api(processes: Processes, settings) -> Iterator[str]:
    """One API process serving the console, with access tokens living 3 seconds."""
    _build_console()
    port = free_port()
    processes.start("api-short", "api", "--port", str(port),
                    env=processes.env | {"CITYOPS_JWT_TTL_S": str(ACCESS_TTL_S)})
    wait_for(lambda: port_open(port), timeout_s=60, what="the API")
    yield f"http://127.0.0.1:{port}"


def _csp_violations(page) -> list[str]:
    """What Chromium refused under the Content-Security-Policy (api/headers.py)."""
    found: list[str] = []
    page.on("console", lambda m: found.append(m.text)
            if "Content Security Policy" in m.text else None)
    return found


def _watch(page) -> list[tuple[float, int, str]]:
    seen: list[tuple[float, int, str]] = []

    def record(response: Response) -> None:
        if "/v1/" in response.url:
            seen.append((time.monotonic(), response.status, response.url))

    page.on("response", record)
    return seen


def test_a_display_outlives_the_access_token_without_a_login(
        browser: Browser, short_api: str, settings) -> None:
    with httpx.Client(base_url=short_api, timeout=10) as api:
        wall = ok(api.post("/v1/displays", headers=bearer(settings, "security_admin"),
                           json={"id": unique("wall"), "name": "大屏"}), 201)
    context = browser.new_context(viewport=VIEWPORT, base_url=short_api, locale="zh-CN")
    try:
        page = context.new_page()
        seen, refused = _watch(page), _csp_violations(page)
        page.goto(f"/?wall=1#display={wall['token']}")
        page.wait_for_selector("[data-test=wall]")
        assert "display=" not in page.url  # the token leaves the address bar at once
        started = time.monotonic()
        # the wall refreshes its figures every 10 s: one answered 200 well past the access
        # token's life shows the display token is what keeps it reading (Playwright waits
        # with its own deadline, handling the browser's events meanwhile)
        with page.expect_response(lambda r: "/v1/devices" in r.url and r.status == 200
                                  and time.monotonic() > started + ACCESS_TTL_S + 1,
                                  timeout=30_000):
            pass
        assert page.locator("form[data-test=login]").count() == 0
        assert [s for s in seen if s[1] == 401] == []
        page.reload()  # after a restart the wall comes back by itself, token kept
        page.wait_for_selector("[data-test=wall]")
        assert page.locator("form[data-test=login]").count() == 0
        assert refused == []  # the wall (ECharts, the map's worker) runs under the CSP
    finally:
        context.close()


def test_a_person_stays_logged_in_by_refreshing(browser: Browser, short_api: str,
                                                settings) -> None:
    name = unique("p")
    with httpx.Client(base_url=short_api, timeout=10) as api:
        ok(api.post("/v1/users", headers=bearer(settings, "admin"),
                    json={"username": name, "password": PASSWORD, "role": "operator"}), 201)
    context = browser.new_context(viewport=VIEWPORT, base_url=short_api, locale="zh-CN")
    try:
        page = context.new_page()
        seen = _watch(page)
        page.goto("/devices")
        page.fill("input[name=username]", name)
        page.fill("input[name=password]", PASSWORD)
        page.click("form[data-test=login] button.primary")
        page.wait_for_selector("header.topbar")
        # active past the access token's life: the next page's calls renew it first
        page.wait_for_function(f"() => Date.now() > {int(time.time() * 1000)}"
                               f" + {(ACCESS_TTL_S + 1) * 1000}", polling=200)
        page.mouse.click(5, 400)
        with page.expect_response(lambda r: "/v1/alarms" in r.url and r.status == 200):
            page.click("[data-nav=alarms]")
        refreshes = [status for _, status, url in seen if "/v1/auth/refresh" in url]
        assert refreshes and set(refreshes) == {200}
        assert [s for s in seen if s[1] == 401] == []
        page.wait_for_selector("header.topbar")
        assert page.locator("form[data-test=login]").count() == 0
        # /docs under its own policy (its one inline script allowed by hash)
        refused = _csp_violations(page)
        page.goto("/docs")
        page.wait_for_selector(".opblock-tag", timeout=30_000)
        assert refused == []
    finally:
        context.close()
