"""Security headers on every answer (issue #19 item 6; api/headers.py): the console, the API,
its refusals and /docs (with its own script hash); HSTS only over HTTPS. The browser side
(nothing the console or /docs needs is refused) is tests/e2e/test_console_display.py."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from cityops.settings import Settings
from tests.api_kit import api_settings
from tests.conftest import BrokerFixture


@pytest.fixture(scope="module")
def clients(settings: Settings, broker: BrokerFixture):
    plain = api_settings(settings, broker)
    with TestClient(create_app(plain)) as http, TestClient(
            create_app(plain.model_copy(update={"api_https": True}))) as https:
        yield http, https


def test_every_answer_carries_the_headers(clients) -> None:
    http, https = clients
    for res in (http.get("/v1/health"), http.get("/v1/devices"), http.get("/"),
                http.post("/v1/auth/token", data={"username": "x", "password": "y"})):
        csp = res.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp, res.url
        assert "object-src 'none'" in csp and "'unsafe-eval'" not in csp
        assert res.headers["x-frame-options"] == "DENY"
        assert res.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert "camera=()" in res.headers["permissions-policy"]
        assert "strict-transport-security" not in res.headers
    assert https.get("/v1/health").headers["strict-transport-security"].startswith(
        "max-age=31536000")


def test_docs_allow_exactly_their_own_inline_script(clients) -> None:
    http, _ = clients
    page = http.get("/docs")
    if page.status_code == 503:  # Swagger UI's npm package missing: `make web` installs it
        pytest.fail("api/docs_viewer is not installed")
    script = re.search(r"<script>(.*?)</script>", page.text, re.DOTALL).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = page.headers["content-security-policy"]
    assert f"'sha256-{digest}'" in csp and "'unsafe-inline'" not in csp.split("style-src")[0]
    assert csp.count("content-security-policy") == 0 and page.headers["x-frame-options"]
