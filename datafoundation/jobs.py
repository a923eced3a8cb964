"""Syncs as jobs on the platform's queue (procrastinate on the platform's PostgreSQL), queue
`sync`, served by `cityops sync worker` (its own process: cloud workers keep their
`cloud.<name>` queues and need nothing of this). Start workers on several machines to share
the syncs; one sync never runs twice at once (procrastinate lock + an advisory lock in the
runner)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import procrastinate
import psycopg
from croniter import croniter

from cityops.errors import SinkUnavailable, SourceUnavailable
from cityops.reconnect import database_lost_is_retryable, stop_on_signals
from cityops.settings import Settings
from datafoundation.governance import jobs as model_jobs

log = logging.getLogger(__name__)
QUEUE = "sync"
TASK = "datafoundation:run_sync"
RANGE_TASK = "datafoundation:run_range"
# an unreachable source, or the platform's database lost under a run (a failover), is tried
# again after 2, 4, 8, 16 s (procrastinate's exponential wait is wait**attempt): the run
# resumes after its last committed batch. A refusal (wrong password, drift under a frozen
# contract) is not
RETRY = procrastinate.RetryStrategy(max_attempts=5, exponential_wait=2,
                                    retry_exceptions=[SourceUnavailable, SinkUnavailable])


async def run_sync_job(context: procrastinate.JobContext, sync_id: int) -> None:
    from datafoundation import split
    from datafoundation.runner import run_sync

    settings: Settings = context.app.cityops_settings  # type: ignore[attr-defined]
    url = settings.database_url.get_secret_value()
    with database_lost_is_retryable(f"sync {sync_id}"):
        run_id = await asyncio.to_thread(run_sync, url, settings.secret_key.get_secret_value(),
                                         sync_id, False)
        # a first load split by key ranges: one job per unfinished range, for any worker
        ranges = await asyncio.to_thread(split.pending, url, run_id)
    for number in ranges:
        await defer_range(context.app, sync_id, run_id, number)
    if not ranges:
        await model_jobs.after_sync(context.app, settings, sync_id)  # the models reading it


async def run_range_job(context: procrastinate.JobContext, sync_id: int, run_id: int,
                        range_no: int) -> None:
    from datafoundation.split import run_range

    settings: Settings = context.app.cityops_settings  # type: ignore[attr-defined]
    with database_lost_is_retryable(f"sync {sync_id} range {range_no}"):
        last = await asyncio.to_thread(run_range, settings.database_url.get_secret_value(),
                                       settings.secret_key.get_secret_value(), sync_id, run_id,
                                       range_no)
    if last:  # this range completed the run
        await model_jobs.after_sync(context.app, settings, sync_id)


async def defer_range(app: procrastinate.App, sync_id: int, run_id: int,
                      range_no: int) -> int | None:
    lock = f"sync-{sync_id}-run-{run_id}-range-{range_no}"
    try:
        return await app.configure_task(RANGE_TASK, queue=QUEUE, lock=lock, queueing_lock=lock
                                        ).defer_async(sync_id=sync_id, run_id=run_id,
                                                      range_no=range_no)
    except procrastinate.exceptions.AlreadyEnqueued:
        return None


def due_syncs(conn: psycopg.Connection, now: datetime) -> list[int]:
    """Enabled, unflagged syncs whose cron schedule fired in the minute before `now`."""
    rows = conn.execute("SELECT id, schedule FROM syncs WHERE enabled AND flagged IS NULL "
                        "AND schedule IS NOT NULL").fetchall()
    minute = now.replace(second=0, microsecond=0)
    due = []
    for sync_id, schedule in rows:
        if not croniter.is_valid(schedule):
            log.error("sync %s: schedule %r is not a cron expression: skipped", sync_id, schedule)
            continue
        fired = croniter(schedule, minute - timedelta(seconds=1)).get_next(datetime)
        if fired == minute:
            due.append(sync_id)
    return due


async def defer(app: procrastinate.App, sync_id: int) -> int | None:
    """Queue one run; None when that sync already waits in the queue."""
    try:
        return await app.configure_task(
            TASK, queue=QUEUE, lock=f"sync-{sync_id}", queueing_lock=f"sync-{sync_id}",
        ).defer_async(sync_id=sync_id)
    except procrastinate.exceptions.AlreadyEnqueued:
        return None


async def schedule(context: procrastinate.JobContext, timestamp: int) -> None:
    settings: Settings = context.app.cityops_settings  # type: ignore[attr-defined]
    now = datetime.fromtimestamp(timestamp)

    def find() -> list[int]:
        with psycopg.connect(settings.database_url.get_secret_value()) as conn:
            return due_syncs(conn, now)

    for sync_id in await asyncio.to_thread(find):
        await defer(context.app, sync_id)


def build_app(settings: Settings) -> procrastinate.App:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(
        conninfo=settings.database_url.get_secret_value(), min_size=1, max_size=4))
    app.task(name=TASK, pass_context=True, queue=QUEUE, retry=RETRY)(run_sync_job)
    app.task(name=RANGE_TASK, pass_context=True, queue=QUEUE, retry=RETRY)(run_range_job)
    model_jobs.register(app)
    tick = app.task(name="datafoundation:schedule", pass_context=True, queue=QUEUE)(schedule)
    app.periodic(cron="* * * * *", periodic_id="sync-schedule",
                 queueing_lock="sync-schedule")(tick)
    app.cityops_settings = settings  # type: ignore[attr-defined]
    return app


async def run_worker(settings: Settings, concurrency: int = 2) -> None:
    """Queue jobs, and the binlog followers of the cdc syncs (datafoundation/followers.py),
    until SIGINT/SIGTERM; a lost database is waited out (cityops/job_queue.py)."""
    from cityops.job_queue import run_queue_worker
    from datafoundation.followers import supervise

    stop = stop_on_signals()
    followers = asyncio.create_task(supervise(settings.database_url.get_secret_value(),
                                              settings.secret_key.get_secret_value(), stop))
    try:
        await run_queue_worker("sync worker", lambda: build_app(settings), [QUEUE],
                               concurrency, settings.job_stalled_after_s, stop)
    finally:
        stop.set()
        await followers
