"""How the API serves the console, without a browser: the build's index.html for each of the
console's paths with its security policy, hashed assets cached for good, and a page saying how
to build the console when there is no build."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.console import install_console


def _client(dist: Path) -> TestClient:
    app = FastAPI()
    install_console(app, dist)
    return TestClient(app)


def test_the_build_is_served_for_every_console_path(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>console</title>")
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)")
    client = _client(tmp_path)
    for path in ("/", "/devices/meter-01", "/control", "/events/42", "/data"):
        page = client.get(path)
        assert page.status_code == 200 and "<title>console</title>" in page.text, path
        assert page.headers["cache-control"] == "no-cache"
        assert "default-src 'self'" in page.headers["content-security-policy"]
    asset = client.get("/assets/index-abc123.js")
    assert asset.status_code == 200 and asset.text == "console.log(1)"
    assert "immutable" in asset.headers["cache-control"]
    assert client.get("/assets/missing.js").status_code == 404
    assert client.get("/not-a-console-page").status_code == 404


def test_without_a_build_the_console_says_how_to_make_one(tmp_path: Path) -> None:
    client = _client(tmp_path / "dist")
    page = client.get("/")
    assert page.status_code == 503
    assert "make web" in page.text
    assert client.get("/assets/index.js").status_code == 404
