"""Models as jobs on the platform's queue: a sync job that succeeds queues the standard model
reading its raw table, which queues the topic model after it (one worker pass, real
procrastinate on the session's PostgreSQL)."""

from __future__ import annotations

import asyncio

import psycopg
from pydantic import SecretStr

from datafoundation import jobs
from datafoundation.governance import run as runner
from tests.integration.datafoundation.conftest import SECRET_KEY


def _runs(database_url: str, names: list[str]) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        return dict(conn.execute(
            "SELECT model, count(*) FILTER (WHERE state = 'succeeded') FROM layer_model_runs "
            "WHERE model = ANY(%s) GROUP BY model", (names,)).fetchall())


def test_a_sync_job_runs_the_models_after_it(database_url, settings, governed):
    folder, suffix, sync, _raw = governed
    names = [f"std_enterprises_{suffix}", f"topic_enterprises_{suffix}",
             f"topic_industrial_{suffix}"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert runner.record_all(conn, folder) == names  # deployed, not yet run
    app = jobs.build_app(settings.model_copy(update={"secret_key": SecretStr(SECRET_KEY)}))

    async def go() -> None:
        async with app.open_async():
            await jobs.defer(app, sync)
            # processes the queue until empty, including the jobs its jobs queue
            await app.run_worker_async(queues=[jobs.QUEUE], wait=False, concurrency=1)

    asyncio.run(go())
    assert _runs(database_url, names) == dict.fromkeys(names, 1)
    with psycopg.connect(database_url) as conn:
        assert conn.execute(f"SELECT count(*) FROM topic.enterprises_{suffix}").fetchone()[0] > 0
