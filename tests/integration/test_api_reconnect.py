"""The API after a database outage (issue #22 item 11): it answered 503 for up to 45 s after
PostgreSQL was back. The database is reached through a proxy the test cuts and restores (the
shared cluster itself is never stopped); the API must answer within about 2 s of the return."""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.main import create_app
from cityops.settings import Settings
from tests.api_kit import api_settings, bearer
from tests.conftest import BrokerFixture
from tests.helpers import wait_for
from tests.integration.tcp_proxy import TcpProxy

# long enough for psycopg_pool's own reconnect backoff (1, 2, 4, 8 s ...) to have grown
OUTAGE_S = 8.0


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    netloc = f"{user}@127.0.0.1:{port}" if user else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def test_api_answers_within_two_seconds_of_the_database_coming_back(
    settings: Settings, broker: BrokerFixture, database_url: str
) -> None:
    target = urlsplit(database_url)
    with TcpProxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
        app_settings = api_settings(settings, broker).model_copy(
            update={"database_url": SecretStr(_through(database_url, proxy.port))})
        admin = bearer(settings, "admin")
        with TestClient(create_app(app_settings)) as client:
            def status() -> int:
                return client.get("/v1/alarms", headers=admin).status_code

            wait_for(lambda: status() == 200, what="the API answering")
            proxy.cut()
            cut_at, during = time.monotonic(), []
            while time.monotonic() - cut_at < OUTAGE_S:
                during.append(status())
            assert set(during) == {503}, f"503 while the database is away, got {during}"
            proxy.restore()
            back_at = time.monotonic()
            wait_for(lambda: status() == 200, timeout_s=15, interval_s=0.05,
                     what="the API answering again")
            took = time.monotonic() - back_at
            assert took < 2.0, f"the API answered {took:.1f} s after the database was back"
