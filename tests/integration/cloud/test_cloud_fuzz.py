"""Schemathesis over the cloud routes' reads, with the lab configured: no server errors.
(Job-creating POSTs are left out: a fuzzed job would really change the lab. Their bodies are
validated by pydantic models, tested in test_cloud_jobs.py.)"""

from __future__ import annotations

import threading

import schemathesis
import uvicorn
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from api.main import create_app
from tests.api_kit import bearer
from tests.helpers import free_port, port_open, wait_for


def test_cloud_reads_never_answer_with_a_server_error(cloud_settings) -> None:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(cloud_settings), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: port_open(port), what="api")
    base = f"http://127.0.0.1:{port}"
    headers = bearer(cloud_settings, "ops_engineer", "t-fuzz-ops")
    failures: list[str] = []
    calls = 0
    try:
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        for result in schema.get_all_operations():
            op = result.ok()
            reads = op.method.upper() == "GET" or op.path.endswith("/acknowledge")
            if not op.path.startswith("/v1/cloud/") or not reads or op.path.endswith("/events"):
                continue

            @given(case=op.as_strategy())
            @hypothesis_settings(max_examples=10, deadline=None, database=None,
                                 suppress_health_check=list(HealthCheck))
            def run(case) -> None:
                nonlocal calls
                response = case.call(base_url=base, headers=headers, timeout=30)
                calls += 1
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path}: "
                                    f"{response.status_code} {response.text[:200]}")

            run()
    finally:
        server.should_exit = True
        thread.join(10)
    assert calls >= 50
    assert not failures, "\n".join(failures[:20])
