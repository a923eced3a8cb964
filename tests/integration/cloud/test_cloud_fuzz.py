"""Schemathesis over the cloud routes' reads, with the lab configured: no server errors.
(Job-creating POSTs are left out: a fuzzed job would really change the lab. Their bodies are
validated by pydantic models, tested in test_cloud_jobs.py.)"""

from __future__ import annotations

import threading

import uvicorn

from api.main import create_app
from tests.api_kit import bearer, fuzz
from tests.helpers import free_port, port_open, wait_for


def test_cloud_reads_never_answer_with_a_server_error(cloud_settings) -> None:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(cloud_settings), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: port_open(port), timeout_s=60, what="api")
    base = f"http://127.0.0.1:{port}"

    def keep(op) -> bool:
        reads = op.method.upper() == "GET" or op.path.endswith("/acknowledge")
        return op.path.startswith("/v1/cloud/") and reads and not op.path.endswith("/events")

    try:
        calls, failures = fuzz(base, bearer(cloud_settings, "ops_engineer", "t-fuzz-ops"), keep,
                               10)
    finally:
        server.should_exit = True
        thread.join(10)
    assert calls >= 50
    assert not failures, "\n".join(failures[:20])
