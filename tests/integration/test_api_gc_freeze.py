"""An API process's start-up objects are out of the garbage collector's full walks
(api/main.py, api/guard.py; issue #21): a full collection of ~240,000 objects stopped a
process for 0.1-0.5 s, the p99 of `make bench-api`. Run in a child process of its own: the
freeze is process-wide."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO, settings_env

CHILD = r"""
import asyncio, gc, json
from api.main import create_app_from_env

async def main():
    app = create_app_from_env()
    started, sent = asyncio.Event(), []
    queue = asyncio.Queue()
    await queue.put({"type": "lifespan.startup"})

    async def send(message):
        sent.append(message["type"])
        if message["type"] == "lifespan.startup.complete":
            started.set()

    lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"},
                                        "state": {}}, queue.get, send))
    await asyncio.wait_for(started.wait(), 60)
    frozen = gc.get_freeze_count()
    answers = []

    async def http_send(message):
        answers.append(message)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": "/v1/health", "raw_path": b"/v1/health",
             "query_string": b"", "headers": [(b"host", b"t")], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80), "state": {}}
    await app(scope, receive, http_send)
    gc.collect()
    print(json.dumps({"frozen": frozen, "tracked": len(gc.get_objects()),
                      "status": answers[0]["status"]}))
    await queue.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(lifespan, 30)

asyncio.run(main())
"""


def test_start_up_objects_are_frozen_and_the_first_request_adds_few(settings):
    import json

    env = settings_env(settings) | {"CITYOPS_API_GC_FREEZE": "true"}
    result = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["status"] == 200
    assert figures["frozen"] > 100_000  # FastAPI, pydantic, the routes and their rules
    # the guard's route rules were built at start-up, not by this first request (they made
    # ~47,000 objects that every full collection then walked)
    assert figures["tracked"] < 20_000, figures
