"""Syncs as jobs on the platform's queue (procrastinate on the platform's PostgreSQL), queue
`sync`, served by `cityops sync worker` (its own process: cloud workers keep their
`cloud.<name>` queues and need nothing of this). Start workers on several machines to share
the syncs; one sync never runs twice at once (procrastinate lock + an advisory lock in the
runner)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import datetime, timedelta

import procrastinate
import psycopg
from croniter import croniter

from cityops.errors import SinkUnavailable, SourceUnavailable
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
# the worker's pause before starting again after losing the database, doubling up to the last
RESTART_WAIT_S = (1.0, 2.0, 4.0, 8.0)


@contextlib.contextmanager
def database_lost_is_retryable(what: str):
    """A connection to the platform's database lost mid-job (kill -9 of the primary, a
    failover) as our retryable error: the job is queued again, not failed."""
    try:
        yield
    except (psycopg.OperationalError, psycopg.InterfaceError) as err:
        raise SinkUnavailable(f"{what}: the platform's database was lost "
                              f"({type(err).__name__}); retried") from err


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
    """Queue jobs, and the binlog followers of the cdc syncs (datafoundation/followers.py)."""
    from datafoundation.followers import supervise

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    followers = asyncio.create_task(supervise(settings.database_url.get_secret_value(),
                                              settings.secret_key.get_secret_value(), stop))
    try:
        attempt = 0
        while not stop.is_set():
            if await _serve_queue(settings, concurrency, stop):
                attempt = 0  # it ran: the next loss starts the backoff again
            wait_s = RESTART_WAIT_S[min(attempt, len(RESTART_WAIT_S) - 1)]
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait_s)
    finally:
        stop.set()
        await followers


async def _serve_queue(settings: Settings, concurrency: int, stop: asyncio.Event) -> bool:
    """One life of procrastinate's worker, until `stop` (a signal) or until it ends on its
    own: it stops itself when its listener or heartbeat loses the database (kill -9 of the
    primary, a failover), and the caller starts it again. Jobs a lost worker left 'doing' go
    back to the queue once its heartbeat is stale. True if it got as far as serving."""
    app, after_s = build_app(settings), settings.job_stalled_after_s
    try:
        async with app.open_async():
            await _retry_stalled(app, after_s)
            worker = asyncio.create_task(app.run_worker_async(
                queues=[QUEUE], concurrency=concurrency, wait=True,
                install_signal_handlers=False,  # ours set `stop`, which ends it gracefully
                update_heartbeat_interval=max(1.0, after_s / 6), stalled_worker_timeout=after_s))
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({worker, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if stop.is_set():
                worker.cancel()  # procrastinate waits for the running jobs, then returns
            with contextlib.suppress(asyncio.CancelledError):
                await worker
    except (psycopg.Error, procrastinate.exceptions.ProcrastinateException, OSError) as err:
        log.warning("sync worker: the database is unavailable (%s): starting again", err)
        return False
    if not stop.is_set():
        log.warning("sync worker: the job worker stopped on its own (its database connection"
                    " was lost): starting again")
    return True


async def _retry_stalled(app: procrastinate.App, after_s: float) -> None:
    for job in await app.job_manager.get_stalled_jobs(queue=QUEUE,
                                                      seconds_since_heartbeat=after_s):
        log.warning("sync job %s %s was left by a lost worker: retrying", job.id,
                    job.task_kwargs)
        await app.job_manager.retry_job(job)
