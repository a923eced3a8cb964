"""What runs beside the HTTP routes for the app's lifetime: the MQTT link, the live hub, the
metering flusher and the command expiry sweep; and the services routes reach through
`app.state` (onboarding, commander, presets, meter, hub)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import orjson
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from api.bucket_cache import BucketCache
from api.metering import Meter
from api.rollup_watch import RollupWatch
from api.services.broker_accounts import LocalMosquitto
from api.services.commands import Commander
from api.services.gateways import Onboarding
from api.services.live import LiveHub
from api.services.mqtt_link import MqttLink
from api.services.presets import PresetRunner
from cityops import wire
from cityops.errors import WireError
from cityops.settings import Settings
from ingestion.queue_alarms import note_gateway_status

log = logging.getLogger(__name__)
SHUTDOWN_WAIT_S = 5.0
# the deployment's alarm events (api/services/mqtt_link.py subscribes to its own only)
INTERNAL_PREFIX = f"{wire.TOPIC_ROOT}/_internal/"


async def record_status(pool: AsyncConnectionPool, topic: str, payload: bytes) -> None:
    """A gateway's retained status (or its will): kept on the gateway's row."""
    if not payload:
        return
    try:
        gateway = wire.gateway_of(topic, "status")
        status: wire.Status = wire.decode(wire.Status, payload)
    except WireError as err:
        log.warning("status on %s refused: %s", topic, err.detail)
        return
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "UPDATE gateways SET last_status = %s::jsonb, last_seen_at = now() WHERE id = %s",
            (wire.encode(status).decode(), gateway),
        )
        # readings dropped by the gateway's full queue raise an alarm (issue #22 item 11)
        await note_gateway_status(conn, gateway, status)


def _handler(pool: AsyncConnectionPool, commander: Commander, hub: LiveHub):
    async def handle(topic: str, payload: bytes) -> None:
        if topic.startswith(INTERNAL_PREFIX) and "/alarms/" in topic:
            with contextlib.suppress(orjson.JSONDecodeError, TypeError):
                hub.publish({"kind": "alarm", **orjson.loads(payload)})
        elif "/command-results/" in topic:
            await commander.record_result(topic, payload)
        elif topic.endswith("/status"):
            await record_status(pool, topic, payload)

    return handle


def _supervised(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task:
    task = asyncio.get_running_loop().create_task(coro, name=name)

    def report(done: asyncio.Task) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.error("background task %s stopped: %r", name, done.exception())

    task.add_done_callback(report)
    return task


async def _stop(tasks: list[asyncio.Task]) -> None:
    """Cancel the background tasks and wait for them, within a bound: a task that does not
    end on its cancellation is named in the log, and the process still stops (the full suite
    once hung for minutes in an API's shutdown, never seen alone)."""
    for task in tasks:
        task.cancel()
    _, stuck = await asyncio.wait(tasks, timeout=SHUTDOWN_WAIT_S)
    for task in stuck:
        log.error("background task %s did not stop within %.0f s of its cancellation: %s",
                  task.get_name(), SHUTDOWN_WAIT_S, _stack(task))


def _stack(task: asyncio.Task) -> str:
    out = io.StringIO()
    task.print_stack(file=out)
    return out.getvalue()


@contextlib.asynccontextmanager
async def run_services(app: FastAPI, settings: Settings, pool: AsyncConnectionPool
                       ) -> AsyncIterator[None]:
    hub = LiveHub(settings.database_url.get_secret_value())
    link = MqttLink(settings, handle=None, on_connect=None)  # type: ignore[arg-type]
    credentials = LocalMosquitto(settings.broker_state_dir or settings.state_dir / "broker",
                                 settings.topic_root)
    onboarding = Onboarding(settings, pool, link, credentials)
    commander = Commander(pool, link)
    link.handle = _handler(pool, commander, hub)
    link.on_connect = onboarding.publish_pending
    meter = Meter(pool)
    presets = PresetRunner(pool, commander)
    app.state.hub, app.state.link, app.state.onboarding = hub, link, onboarding
    app.state.commander, app.state.presets, app.state.meter = commander, presets, meter
    app.state.bucket_cache = BucketCache(settings.api_bucket_cache_mb * 1024 * 1024)
    app.state.rollup_watch = watch = RollupWatch(app.state.bucket_cache)
    tasks = [_supervised(link.run(), "mqtt"), _supervised(hub.run(), "live"),
             _supervised(watch.run(settings.database_url.get_secret_value()), "rollup-watch"),
             _supervised(meter.run(), "metering"),
             _supervised(commander.expire_loop(), "command-expiry")]
    try:
        yield
    finally:
        await presets.close()
        await onboarding.close()
        await _stop(tasks)
        if link.conn is not None:
            try:
                await asyncio.wait_for(link.conn.close(), SHUTDOWN_WAIT_S)
            except TimeoutError:
                log.error("the MQTT link did not close within %.0f s", SHUTDOWN_WAIT_S)
