"""Cloud jobs: every cloud change and Ansible run is a row in `jobs`, run by `cityops worker`.

The queue is procrastinate on the platform's own PostgreSQL: the API answers at once, and a
worker that dies mid-job leaves a stalled job that the next worker retries (handlers are
idempotent by name, so a retry finds what the first attempt made). Progress lines and
Ansible's per-host events go to `job_events`, which the API streams out over SSE.

Every job names its cloud, and goes to that cloud's queue (`cloud.<name>`): a worker takes
jobs only from the queue of the cloud it is configured for (`CITYOPS_CLOUD_NAME`), and runs
that cloud's periodic sync, so several clouds share one database without sharing work.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import procrastinate
import psycopg
from psycopg.rows import dict_row
from pydantic import ValidationError

from cityops.errors import Conflict, InvalidInput, NotFound, PlatformError, SinkUnavailable
from cityops.reconnect import DATABASE_LOST, database_lost_is_retryable
from cityops.settings import Settings
from cloud_control.cleanup_jobs import CLEANUP_HANDLERS
from cloud_control.handlers import HANDLERS, Context

log = logging.getLogger(__name__)
TASK = "cloud:run_job"
# job kind -> (parameters model, handler); the removals (and server deletion, which also
# releases the server's floating IPs) come from cleanup_jobs.py
JOB_KINDS = {**HANDLERS, **CLEANUP_HANDLERS}
# a job that lost the platform's database under it (a failover) runs again after 2, 4, 8,
# 16 s; its handler finds what the first attempt made (idempotent by name)
RETRY = procrastinate.RetryStrategy(max_attempts=5, exponential_wait=2,
                                    retry_exceptions=[SinkUnavailable])


@dataclass
class Reporter:
    """Called from the handler's thread: its own synchronous connection, no shared state."""

    database_url: str
    job_id: str

    def event(self, message: str = "", host: str | None = None, task: str | None = None,
              status: str | None = None, progress: int | None = None) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO job_events (job_id, message, host, task, status)"
                " VALUES (%s, %s, %s, %s, %s)", (self.job_id, message, host, task, status))
            if progress is not None:
                conn.execute("UPDATE jobs SET progress = %s WHERE id = %s",
                             (progress, self.job_id))


def queue_of(cloud: str) -> str:
    return f"cloud.{cloud}"


def offered_clouds(settings: Settings) -> list[str]:
    return settings.cloud_names or [settings.cloud_name]


def check_cloud(settings: Settings, cloud: str | None) -> str:
    """The cloud a request names (default: the API's own), if this deployment offers it."""
    offered = offered_clouds(settings)
    chosen = cloud or settings.cloud_name
    if chosen not in offered:
        raise InvalidInput(f"cloud: unknown cloud {chosen!r}: one of {', '.join(offered)}"
                           " (CITYOPS_CLOUD_NAMES)")
    return chosen


def validate(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The job's parameters, checked; InvalidInput names the bad field."""
    if kind not in JOB_KINDS:
        raise InvalidInput(f"unknown job kind {kind!r}: one of {', '.join(sorted(JOB_KINDS))}")
    model, _handler = JOB_KINDS[kind]
    try:
        return model.model_validate(params).model_dump(mode="json")
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "params"
        raise InvalidInput(f"{kind}: {where}: {first['msg']}") from err


async def submit(app: procrastinate.App, conn: psycopg.AsyncConnection, kind: str,
                 params: dict[str, Any], requested_by: str, cloud: str,
                 key: str | None = None) -> str:
    """Record the job, then queue it for its cloud's workers; returns its id at once.
    The same person and idempotency key give the first job back, not a second one."""
    checked = validate(kind, params)
    if key is not None and (found := await _keyed(conn, kind, checked, requested_by, cloud,
                                                  key)):
        return found
    job_id = str(uuid.uuid4())
    await conn.execute(
        "INSERT INTO jobs (id, kind, params, requested_by, cloud, idempotency_key)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (job_id, kind, json.dumps(checked), requested_by, cloud, key))
    await conn.commit()  # also releases _keyed's lock: a second request then finds this row
    try:
        await app.configure_task(TASK, queue=queue_of(cloud)).defer_async(job_id=job_id)
    except Exception as err:
        await _finish(conn, job_id, "failed", f"could not queue the job: {err}", None)
        raise
    return job_id


async def _keyed(conn: psycopg.AsyncConnection, kind: str, params: dict[str, Any],
                 requested_by: str, cloud: str, key: str) -> str | None:
    """The job this person already submitted with this key, if any. An advisory lock on the
    pair, held until submit() commits, makes a double click's second request wait for the
    first one's row. The key used for another request is a conflict, not that job."""
    if not 8 <= len(key) <= 64 or not key.isascii() or not key.isprintable():
        raise InvalidInput("Idempotency-Key: 8 to 64 printable ASCII characters")
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 35))",
                       (f"{requested_by}\n{key}",))
    cur = await conn.execute("SELECT id, kind, params, cloud FROM jobs"
                             " WHERE requested_by = %s AND idempotency_key = %s",
                             (requested_by, key))
    row = await cur.fetchone()
    if row is None:
        return None
    await conn.commit()
    if (row[1], row[2], row[3]) != (kind, params, cloud):
        raise Conflict(f"Idempotency-Key {key!r} was used for another request (job {row[0]}, "
                       f"{row[1]}): a new request needs a new key")
    return str(row[0])


async def _finish(conn: psycopg.AsyncConnection, job_id: str, state: str, detail: str,
                  result: dict | None) -> None:
    await conn.execute(
        "UPDATE jobs SET state = %s, detail = %s, result = %s, finished_at = now(),"
        " progress = CASE WHEN %s = 'succeeded' THEN 100 ELSE progress END WHERE id = %s",
        (state, detail[:2000], json.dumps(result) if result is not None else None, state, job_id))
    await conn.commit()


async def _audit(conn: psycopg.AsyncConnection, job: dict, outcome: str, detail: str) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor, actor_kind, action, target, outcome, detail)"
        " VALUES (%s, 'user', %s, %s, %s, %s)",
        (job["requested_by"], f"cloud.{job['kind']}", str(job["id"]), outcome,
         json.dumps({"job": str(job["id"]), "detail": detail[:500]})))
    await conn.commit()


async def execute(settings: Settings, job_id: str) -> None:
    url = settings.database_url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
        cur = await conn.execute(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1,"
            " started_at = coalesce(started_at, now())"
            " WHERE id = %s AND state IN ('queued', 'running') AND cloud IN ('', %s)"
            " RETURNING *", (job_id, settings.cloud_name))
        job = await cur.fetchone()
        await conn.commit()
        if job is None:
            # '' is a job queued before jobs named their cloud
            log.info("job %s: finished, unknown, or not for cloud %s: nothing to do", job_id,
                     settings.cloud_name)
            return
        model, handler = JOB_KINDS[job["kind"]]
        reporter = Reporter(url, job_id)
        context = Context(settings=settings, report=reporter.event)
        try:
            result = await asyncio.to_thread(handler, context, model.model_validate(job["params"]))
        except DATABASE_LOST:
            raise  # the job runs again after the failover (RETRY): the handlers are idempotent
        except PlatformError as err:
            log.warning("job %s (%s) failed: %s", job_id, job["kind"], err.detail)
            await _finish(conn, job_id, "failed", err.detail, None)
            await _audit(conn, job, "failed", err.detail)
            return
        except Exception as err:
            # a bug must not leave the job "running" forever: record it, then let it surface
            await _finish(conn, job_id, "failed", f"internal error: {err!r}", None)
            await _audit(conn, job, "error", repr(err))
            raise
        await _finish(conn, job_id, "succeeded", "", result)
        await _audit(conn, job, "ok", "")
        log.info("job %s (%s) succeeded", job_id, job["kind"])


# queued with the job's cloud's queue (submit), never on the task's default one
async def run_job(context: procrastinate.JobContext, job_id: str) -> None:
    with database_lost_is_retryable(f"cloud job {job_id}"):
        await execute(context.app.cityops_settings, job_id)  # type: ignore[attr-defined]


async def sync(context: procrastinate.JobContext, timestamp: int, cloud: str = "") -> None:
    from cloud_control.monitor import sync_cloud

    settings: Settings = context.app.cityops_settings  # type: ignore[attr-defined]
    if cloud and cloud != settings.cloud_name:
        log.error("sync of cloud %s reached a worker of cloud %s: skipped", cloud,
                  settings.cloud_name)
        return
    await sync_cloud(settings)


def build_app(settings: Settings) -> procrastinate.App:
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            conninfo=settings.database_url.get_secret_value(), min_size=1, max_size=4,
        ),
    )
    # registered on each app: a shared procrastinate Blueprint is renamed in place by every
    # add_tasks_from (the second app got "cloud:cloud:sync")
    app.task(name=TASK, pass_context=True, retry=RETRY)(run_job)
    sync_task = app.task(name="cloud:sync", pass_context=True)(sync)
    cloud = settings.cloud_name
    # every minute, once per cloud: the periodic id and the locks carry the cloud's name, so
    # the syncs of two clouds never stand in for each other. `lock` runs one sync of a cloud
    # at a time (a sync slower than a minute, on a loaded cloud, used to start the next on
    # top of it and fill the worker's slots); `queueing_lock` keeps at most one waiting.
    app.periodic(cron="* * * * *", periodic_id=f"sync:{cloud}", queue=queue_of(cloud),
                 lock=f"cloud-sync:{cloud}", queueing_lock=f"cloud-sync:{cloud}",
                 task_kwargs={"cloud": cloud})(sync_task)
    app.cityops_settings = settings  # type: ignore[attr-defined]
    return app


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """Serve this cloud's queue until `stop`; a lost database is waited out, and jobs a lost
    worker left running go back to the queue (cityops/job_queue.py)."""
    from cityops.job_queue import run_queue_worker

    await run_queue_worker(f"cloud worker {settings.cloud_name}", lambda: build_app(settings),
                           [queue_of(settings.cloud_name)], 4, settings.job_stalled_after_s,
                           stop)


async def get_job(conn: psycopg.AsyncConnection, job_id: str) -> dict:
    cur = await conn.execute("SELECT * FROM jobs WHERE id = %s", (job_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"job {job_id} does not exist")
    return row
