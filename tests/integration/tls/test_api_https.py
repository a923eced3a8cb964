"""The API serving HTTPS with a certificate of the local CA (uvicorn's TLS, as `cityops api`
starts it from the same settings), and its plain-HTTP port that only redirects there."""

from __future__ import annotations

import ssl
import threading
from pathlib import Path

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from api.main import create_app
from api.tls_serve import start_redirect, tls_options
from cityops.errors import ConfigError
from cityops.settings import Settings
from infra.tls.ca import LocalCA
from tests.api_kit import api_settings
from tests.conftest import BrokerFixture
from tests.helpers import free_port, port_open, wait_for


def test_the_api_serves_https_and_its_http_port_only_redirects(
    settings: Settings, broker: BrokerFixture, tmp_path: Path
) -> None:
    ca = LocalCA(tmp_path / "tls").ensure()
    server = ca.server(["127.0.0.1", "localhost"])
    https, http = free_port(), free_port()
    tls = api_settings(settings, broker).model_copy(update={
        "api_tls_cert_file": server.cert, "api_tls_key_file": server.key,
        "api_http_redirect_port": http, "jwt_secret": SecretStr("s" * 40)})
    api = uvicorn.Server(uvicorn.Config(create_app(tls), host="127.0.0.1", port=https,
                                        log_level="warning", **tls_options(tls)))
    threading.Thread(target=api.run, daemon=True).start()
    redirect = start_redirect(tls, https)
    try:
        wait_for(lambda: port_open(https) and port_open(http), what="the API's ports")
        trusted = ssl.create_default_context(cafile=str(ca.cert_path))
        with httpx.Client(verify=trusted, timeout=10) as client:
            reply = wait_for(lambda: client.get(f"https://127.0.0.1:{https}/v1/health"),
                             what="an HTTPS answer")
            assert reply.status_code in (200, 503) and "database" in reply.json()["checks"]
            moved = client.get(f"http://127.0.0.1:{http}/v1/health?x=1", follow_redirects=False)
            assert moved.status_code == 308
            assert moved.headers["location"] == f"https://127.0.0.1:{https}/v1/health?x=1"
        with httpx.Client(timeout=10) as plain:  # no plain HTTP on the HTTPS port
            try:
                answered = plain.get(f"http://127.0.0.1:{https}/v1/health").status_code
            except httpx.HTTPError:
                answered = None
            assert answered in (None, 400)
        with httpx.Client(timeout=10) as untrusting, pytest.raises(httpx.ConnectError):
            untrusting.get(f"https://127.0.0.1:{https}/v1/health")  # unknown to system CAs
    finally:
        api.should_exit = True
        if redirect is not None:
            redirect.should_exit = True
    with pytest.raises(ConfigError, match="both"):
        tls_options(tls.model_copy(update={"api_tls_key_file": None}))
