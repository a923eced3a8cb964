"""The delivery worker (`cityops notify worker`): each pass finds new notifications in the
platform's tables, queues their deliveries and sends what is due. A delivery that fails is retried
with a doubling backoff up to `max_attempts`, every attempt logged with the provider's answer; the
worker is its own process, so a channel that hangs or fails never holds up the workflow."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from psycopg import AsyncConnection

from cityevents.calendar import WorkCalendar
from cityops.errors import PlatformError
from cityops.reconnect import DATABASE_LOST, database_backoff
from datafoundation.secrets import decrypt
from notifications import registry
from notifications.channels.base import Answer, Message
from notifications.fanout import fan_out
from notifications.sources import collect

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=2)  # a claimed delivery is not claimed again while being sent


@dataclass(frozen=True)
class Policy:
    escalate_after: timedelta = timedelta(minutes=15)
    backoff: timedelta = timedelta(seconds=30)
    max_backoff: timedelta = timedelta(hours=1)
    max_attempts: int = 6
    batch: int = 50
    parallel: int = 8
    timeout_s: float = 10.0

    def retry_at(self, now: datetime, attempts: int) -> datetime:
        return now + min(self.backoff * 2 ** (attempts - 1), self.max_backoff)


_CLAIM = """
    UPDATE notification_deliveries d SET next_at = %(lease)s
    FROM notifications n, notification_channels c
    WHERE d.id IN (SELECT id FROM notification_deliveries WHERE state = 'pending'
                   AND next_at <= %(now)s ORDER BY next_at LIMIT %(batch)s
                   FOR UPDATE SKIP LOCKED)
      AND n.id = d.notification_id AND c.id = d.channel_id
    RETURNING d.id, d.attempts, d.recipients, n.title, n.body, n.severity, c.kind, c.config,
              c.secret"""


async def run_once(conn: AsyncConnection, secret_key: str, cal: WorkCalendar, now: datetime,
                   policy: Policy, client: httpx.AsyncClient,
                   unrecorded: list[tuple] | None = None) -> dict[str, int]:
    """One pass; `conn` in autocommit. Returns counts, for the log and the tests. The outcome
    of a send whose record was lost with the database is kept in `unrecorded`, for the next
    connection to write before anything else (`record_lost`)."""
    new = await collect(conn, cal, now, policy.escalate_after)
    queued = await fan_out(conn, new, now)
    async with conn.cursor() as cur:
        await cur.execute(_CLAIM, {"now": now, "lease": now + LEASE, "batch": policy.batch})
        due = await cur.fetchall()
    # sent side by side: a provider slow to answer (up to the timeout) does not hold up the
    # others; the connection serialises the result updates
    gate = asyncio.Semaphore(policy.parallel)

    async def one(row: tuple) -> int:
        async with gate:
            return await _deliver(conn, secret_key, now, policy, client, row, unrecorded)

    # every send finishes (and its outcome is kept) before a lost database ends the pass
    done = await asyncio.gather(*(one(row) for row in due), return_exceptions=True)
    if lost := next((d for d in done if isinstance(d, BaseException)), None):
        raise lost
    sent = sum(done)
    return {"notifications": len(new), "queued": queued, "attempted": len(due), "sent": sent}


async def send(secret_key: str, kind: str, config: dict, secret: bytes | None,
               message: Message, recipients: list[str], client: httpx.AsyncClient) -> Answer:
    """One message through one channel; every failure becomes an answer, never an exception."""
    try:
        cfg, sec = registry.parse(kind, config, decrypt(secret_key, secret))
        return await registry.plugin(kind).send(cfg, sec, message, recipients, client)
    except (httpx.HTTPError, OSError, PlatformError) as err:
        return Answer(False, None, f"{type(err).__name__}: {err}")
    except Exception as err:  # a plugin's bug must not stop the other deliveries
        log.exception("channel %s failed", kind)
        return Answer(False, None, f"{type(err).__name__}: {err}")


# `attempts < new`: a record written twice (its first commit's answer lost) changes nothing
_RECORD = """
    UPDATE notification_deliveries SET state = %s, attempts = %s, next_at = %s,
           last_status = %s, last_answer = %s, log = log || %s::jsonb,
           sent_at = CASE WHEN %s THEN %s END
    WHERE id = %s AND attempts < %s"""


async def _deliver(conn: AsyncConnection, secret_key: str, now: datetime, policy: Policy,
                   client: httpx.AsyncClient, row: tuple,
                   unrecorded: list[tuple] | None = None) -> int:
    did, attempts, recipients, title, body, severity, kind, config, secret = row
    answer = await send(secret_key, kind, config, secret, Message(title, body, severity),
                        list(recipients), client)
    attempts += 1
    if answer.ok:
        state, next_at = "sent", now
    elif attempts >= policy.max_attempts:
        state, next_at = "failed", now
    else:
        state, next_at = "pending", policy.retry_at(now, attempts)
    entry = {"at": now.isoformat(), "status": answer.status, "answer": answer.text}
    record = (state, attempts, next_at, answer.status, answer.text, json.dumps([entry]),
              answer.ok, now, did, attempts)
    try:
        await conn.execute(_RECORD, record)
    except DATABASE_LOST:
        # sent, but not written down: written first thing on the next connection, well
        # within the claim's lease, so no pass sends it again
        if unrecorded is not None:
            unrecorded.append(record)
        raise
    return int(answer.ok)


async def record_lost(conn: AsyncConnection, unrecorded: list[tuple]) -> None:
    """Write the outcomes of sends whose record was lost with the previous connection."""
    while unrecorded:
        await conn.execute(_RECORD, unrecorded[0])
        unrecorded.pop(0)


async def run(database_url: str, secret_key: str, cal: WorkCalendar, policy: Policy,
              interval_s: float) -> None:
    """Pass after pass until cancelled. A lost database (a failover) is connected to again
    after a bounded backoff (1-8 s, cityops/reconnect.py) and the passes resume; a delivery
    claimed before the loss is not claimed again until its lease ends, and one sent before
    it is recorded on the new connection, so nothing is sent twice by this worker."""
    backoff, unrecorded = database_backoff(), []
    async with httpx.AsyncClient(timeout=policy.timeout_s, trust_env=False) as client:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(database_url,
                                                                 autocommit=True) as conn:
                    await record_lost(conn, unrecorded)
                    if backoff.attempt:
                        log.info("notify worker: the database answers again; passes resume")
                    while True:
                        counts = await run_once(conn, secret_key, cal, datetime.now(UTC),
                                                policy, client, unrecorded)
                        backoff.reset()
                        if counts["attempted"] or counts["notifications"]:
                            log.info("notify pass: %s", counts)
                        await asyncio.sleep(interval_s)
            except DATABASE_LOST as err:
                wait_s = backoff.next_delay()
                log.warning("notify worker: database unavailable (%s); again in %.0f s", err,
                            wait_s)
                await asyncio.sleep(wait_s)
