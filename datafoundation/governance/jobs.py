"""Layer models as jobs on the platform's queue (procrastinate, queue `sync`, served by
`cityops sync worker`): after a sync run succeeds, the models reading its raw table are
queued; after a model succeeds, the models reading its target. A model never runs twice at
once (procrastinate lock per model)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import procrastinate
import psycopg

from cityops.settings import Settings
from datafoundation.governance import run as runner
from datafoundation.governance.standards import DEFAULT_DIR

log = logging.getLogger(__name__)
QUEUE = "sync"
TASK = "datafoundation:run_model"


async def defer(app: procrastinate.App, name: str, folder: str | None = None) -> int | None:
    """Queue one model run; None when it already waits in the queue."""
    try:
        return await app.configure_task(
            TASK, queue=QUEUE, lock=f"model-{name}", queueing_lock=f"model-{name}",
        ).defer_async(name=name, folder=folder)
    except procrastinate.exceptions.AlreadyEnqueued:
        return None


def _dependents(database_url: str, dataset: str) -> list[tuple[str, Path]]:
    with psycopg.connect(database_url) as conn:
        return runner.dependents(conn, dataset)


async def defer_dependents(app: procrastinate.App, settings: Settings,
                           dataset: str) -> list[str]:
    found = await asyncio.to_thread(_dependents, settings.database_url.get_secret_value(),
                                    dataset)
    for name, folder in found:
        await defer(app, name, None if folder == DEFAULT_DIR else str(folder))
    return [name for name, _f in found]


def _dataset_of_sync(database_url: str, sync_id: int) -> str | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT id FROM datasets WHERE sync_id = %s AND layer = 'raw'",
                           (sync_id,)).fetchone()
    return row[0] if row else None


async def after_sync(app: procrastinate.App, settings: Settings, sync_id: int) -> None:
    """Called by the sync job once its run succeeded."""
    dataset = await asyncio.to_thread(_dataset_of_sync,
                                      settings.database_url.get_secret_value(), sync_id)
    if dataset is not None:
        await defer_dependents(app, settings, dataset)


async def run_model_job(context: procrastinate.JobContext, name: str,
                        folder: str | None = None) -> None:
    settings: Settings = context.app.cityops_settings  # type: ignore[attr-defined]
    where = Path(folder or DEFAULT_DIR)

    def build() -> str:
        with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
            runner.run(conn, [name], where)
            return conn.execute("SELECT target FROM layer_models WHERE name = %s",
                                (name,)).fetchone()[0]

    target = await asyncio.to_thread(build)  # a failure is raised: the job fails, recorded
    await defer_dependents(context.app, settings, target)


def register(app: procrastinate.App) -> None:
    app.task(name=TASK, pass_context=True, queue=QUEUE)(run_model_job)
