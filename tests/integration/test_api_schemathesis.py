"""Schemathesis generates requests from the OpenAPI document, for every operation of the
facade, and the API must never answer with a server error (5xx)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import uvicorn

from api.main import create_app
from cityops.settings import Settings
from tests.api_kit import api_settings, bearer, fuzz
from tests.conftest import BrokerFixture
from tests.helpers import free_port, port_open, wait_for

EXAMPLES = 8  # per operation: ~70 operations stay well under a minute on this machine
# streams never end, and the health check reports a down dependency as 503 by design
SKIP = {("GET", "/v1/live"), ("GET", "/v1/health")}
# the facade's own operations (issue 5); city events, the catalogue and cloud control are
# fuzzed by their owners' tests
FACADE_TAGS = {"auth", "health", "readings", "registry", "gateways", "devices", "commands",
               "alarms", "live", "access"}


@pytest.fixture(scope="module")
def server(settings: Settings, broker: BrokerFixture) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(create_app(api_settings(settings, broker)), host="127.0.0.1",
                            port=port, log_level="warning", lifespan="on")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    wait_for(lambda: port_open(port), what="api")
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(10)


def test_no_operation_answers_with_a_server_error(server: str, settings: Settings) -> None:
    def keep(operation) -> bool:
        return (operation.method.upper(), operation.path) not in SKIP and bool(
            set(operation.definition.raw.get("tags", [])) & FACADE_TAGS)

    calls, failures = fuzz(server, bearer(settings, "admin", "t-fuzz"), keep, EXAMPLES)
    assert calls > 300
    assert not failures, "\n".join(failures[:20])
