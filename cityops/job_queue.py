"""The one place procrastinate's worker is run (`cityops worker`, `cityops sync worker`), so
every job worker outlives a lost database the same way.

procrastinate's worker stops itself when its LISTEN connection or its heartbeat loses the
database (kill -9 of the primary, a Patroni failover): it waits for the jobs it runs, then
returns or raises. Here it is started again, after a bounded backoff (cityops/reconnect.py),
until a stop signal. Jobs that a lost worker left `doing` (its heartbeat stale for
`stalled_after_s`) go back to their queue: at each start and every `stalled_after_s / 2` while
serving, so a worker that died on another machine is covered too. A job is run again only
by this route or by its task's RetryStrategy, never twice at once (procrastinate's locks), and
the tasks are written to be run again (idempotent by name, resumable by cursor).

Here, not in infra/: infra/ is the deployment tooling (stack, migrations, the HA cluster) that
no service imports at run time, while cityops/ sits below every package, imports none of them
and already holds what the processes share at run time (running.py, mqtt.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import procrastinate
import psycopg

from cityops.reconnect import database_backoff

log = logging.getLogger(__name__)
# what ends one life of the worker: the database lost under procrastinate's pool (its own
# ConnectorException), under ours, or refused at connect while no member is primary yet
QUEUE_LOST = (psycopg.Error, procrastinate.exceptions.ProcrastinateException, OSError)


async def run_queue_worker(label: str, build_app: Callable[[], procrastinate.App],
                           queues: list[str], concurrency: int, stalled_after_s: float,
                           stop: asyncio.Event) -> None:
    """Serve `queues` until `stop` is set, starting procrastinate's worker again each time it
    ends on its own. `build_app` makes a fresh App (and connection pool) for each life."""
    backoff = database_backoff()
    while not stop.is_set():
        if await _serve(label, build_app(), queues, concurrency, stalled_after_s, stop):
            backoff.reset()  # it served: the next loss starts the backoff again
        if not stop.is_set():
            await backoff.pause(stop)


async def _serve(label: str, app: procrastinate.App, queues: list[str], concurrency: int,
                 stalled_after_s: float, stop: asyncio.Event) -> bool:
    """One life of procrastinate's worker; True if it got as far as serving."""
    try:
        async with app.open_async():
            await retry_stalled(app, queues, stalled_after_s)
            worker = asyncio.create_task(app.run_worker_async(
                queues=queues, concurrency=concurrency, wait=True,
                install_signal_handlers=False,  # `stop` ends it gracefully instead
                update_heartbeat_interval=max(1.0, stalled_after_s / 6),
                stalled_worker_timeout=stalled_after_s))
            watcher = asyncio.create_task(_retry_stalled_forever(app, queues, stalled_after_s))
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({worker, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            watcher.cancel()
            if stop.is_set():
                worker.cancel()  # procrastinate waits for the running jobs, then returns
            with contextlib.suppress(asyncio.CancelledError):
                await worker
    except QUEUE_LOST as err:
        log.warning("%s: the database is unavailable (%s: %s): starting again", label,
                    type(err).__name__, err)
        return False
    if not stop.is_set():
        log.warning("%s: the job worker stopped on its own (its database connection was"
                    " lost): starting again", label)
    return True


async def retry_stalled(app: procrastinate.App, queues: list[str], after_s: float) -> int:
    """Jobs of `queues` whose worker sent no heartbeat for `after_s` go back to the queue."""
    count = 0
    for queue in queues:
        for job in await app.job_manager.get_stalled_jobs(queue=queue,
                                                          seconds_since_heartbeat=after_s):
            log.warning("job %s %s %s was left by a lost worker: retrying", job.id,
                        job.task_name, job.task_kwargs)
            await app.job_manager.retry_job(job)
            count += 1
    return count


async def _retry_stalled_forever(app: procrastinate.App, queues: list[str],
                                 after_s: float) -> None:
    while True:
        await asyncio.sleep(after_s / 2)
        try:
            await retry_stalled(app, queues, after_s)
        except QUEUE_LOST as err:  # the worker itself notices and is started again
            log.warning("could not look for stalled jobs: %s", err)
