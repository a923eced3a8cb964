"""/docs in real Chromium (issue #13, item 11): the API's OpenAPI 3.1 document rendered as
operations by the viewer the API serves itself, with nothing fetched from anywhere else.
Swagger UI 4 answered "Unable to render this definition" for 3.1."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.e2e.conftest import VIEWPORT, Console


def test_docs_render_every_operation_offline(browser: Browser, console: Console) -> None:
    context = browser.new_context(viewport=VIEWPORT, base_url=console.url)
    page = context.new_page()
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    try:
        page.goto("/docs")
        tags = page.locator(".opblock-tag")
        expect(tags.first).to_be_visible(timeout=30_000)
        spec = page.request.get("/openapi.json").json()
        named = {t for ops in spec["paths"].values() for o in ops.values() for t in o["tags"]}
        expect(tags).to_have_count(len(named))  # every tag of the document is listed
        assert "Unable to render" not in page.content()
        operations = page.locator(".opblock")
        for tag in ("cloud", "readings"):  # a tag opens with all of its operations
            page.locator(".opblock-tag", has_text=tag).first.click()
        in_tags = sum(1 for ops in spec["paths"].values() for o in ops.values()
                      if set(o["tags"]) & {"cloud", "readings"})
        expect(operations).to_have_count(in_tags)
        summary = page.locator(".opblock-summary-path", has_text="/v1/devices/{device}/latest")
        expect(summary.first).to_be_visible()
        summary.first.click()  # the operation opens with its declared errors, one schema
        responses = page.locator(".opblock.is-open .responses-table")
        expect(responses.first).to_contain_text("404", timeout=15_000)
        expect(responses.first).to_contain_text("a thing the path names does not exist")
    finally:
        context.close()
    elsewhere = [url for url in fetched if not url.startswith(console.url)
                 and not url.startswith("data:")]
    assert not elsewhere, elsewhere
