"""`cityops events watch`: alarms open events, and red lights raise supervision.

Subscribes with the svc-api account to the internal alarm topic that ingest workers publish
from their outbox (QoS 1, persistent session, manual acknowledgement): a message is
acknowledged only after its effect is committed, so a watcher that dies or a database that goes
away loses nothing; the broker redelivers on the next session and event_alarm_links makes the
redelivery harmless. Between messages it runs the supervision sweep every `sweep_interval_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import orjson
from psycopg import AsyncConnection

from cityevents import alarms, supervision
from cityevents.calendar import WorkCalendar, now_utc
from cityevents.reminders import reminder_policy
from cityops import wire
from cityops.errors import BrokerUnavailable, InvalidInput, SinkUnavailable
from cityops.mqtt import MqttConnection
from cityops.reconnect import DATABASE_LOST, database_backoff
from cityops.settings import Settings, deployment_of
from cityops.tls import service_tls_context
from ingestion.alarms import alarm_topic_root

log = logging.getLogger(__name__)
SHARE_GROUP = "events"


class Watcher:
    def __init__(self, settings: Settings, client_id: str, sweep_interval_s: float) -> None:
        self.settings = settings
        self.client_id = client_id
        self.sweep_interval_s = sweep_interval_s
        self.cal = WorkCalendar(settings.calendar_extra_holidays,
                                settings.calendar_extra_workdays)
        self.inbox: asyncio.Queue[tuple[str, bytes, int, int]] = asyncio.Queue()
        self.next_sweep = 0.0
        # 1, 2, 4, 8 s between sessions; 1 s again once subscribed
        self.backoff = database_backoff()
        # the svc-api identity (the broker's ACL lets it read the alarm topics): over TLS its
        # certificate, checked now so a wrong setting stops the watcher at start
        self.tls_context = service_tls_context(settings, "api")

    async def run(self) -> None:
        """Forever: one session at a time, a new one after any broker or database failure
        (a failover: the alarms not acknowledged come again with the new session, and
        event_alarm_links makes a second handling of one harmless)."""
        while True:
            try:
                await self._session()
            except (BrokerUnavailable, SinkUnavailable, *DATABASE_LOST) as err:
                wait_s = self.backoff.next_delay()
                log.warning("events watcher: %s; retrying in %.0f s", err, wait_s)
                await asyncio.sleep(wait_s)

    async def _session(self) -> None:
        self.inbox = asyncio.Queue()  # unacknowledged messages come again with the session
        mqtt = MqttConnection(
            self.settings.mqtt_url, client_id=self.client_id,
            username=self.settings.api_mqtt_username,
            password=self.settings.api_mqtt_password.get_secret_value(),
            clean_start=False, session_expiry_s=86400, manual_ack=True,
            tls_context=self.tls_context,
            on_message=lambda *message: self.inbox.put_nowait(message),
        )
        await mqtt.connect()
        try:
            db = await AsyncConnection.connect(
                self.settings.database_url.get_secret_value(), autocommit=True
            )
            async with db:
                deployment = deployment_of(self.settings)
                root = alarm_topic_root(deployment)
                group = wire.deployment_group(SHARE_GROUP, deployment)
                await mqtt.subscribe([(wire.shared(group, f"{root}/#"), 1)])
                log.info("events watcher subscribed to %s/#", root)
                self.backoff.reset()
                await self._loop(mqtt, db)
        finally:
            await mqtt.close()

    async def _loop(self, mqtt: MqttConnection, db: AsyncConnection) -> None:
        while mqtt.is_connected:
            wait = max(0.0, self.next_sweep - time.monotonic())
            message = None
            with contextlib.suppress(TimeoutError):
                message = await asyncio.wait_for(self.inbox.get(), timeout=min(wait, 1.0))
            if message is not None:
                topic, payload, mid, qos = message
                await self._handle(db, topic, payload)
                mqtt.ack(mid, qos)
            if time.monotonic() >= self.next_sweep:
                done = await supervision.sweep(db, self.cal, now_utc(),
                                               reminder_policy(self.settings))
                if done.supervised:
                    log.info("supervision raised on events %s (red light)", done.supervised)
                if done.reminded:
                    log.info("reminders (催办) sent: %s", done.reminded)
                self.next_sweep = time.monotonic() + self.sweep_interval_s
        raise BrokerUnavailable(f"session closed: {mqtt.closed.result() if mqtt.closed else ''}")

    async def _handle(self, db: AsyncConnection, topic: str, payload: bytes) -> None:
        try:
            await alarms.handle(db, self.cal, orjson.loads(payload), now_utc())
        except (orjson.JSONDecodeError, InvalidInput) as err:
            # not retryable: acknowledge it so it does not block the ones behind it
            log.error("ignored a malformed alarm message on %s: %s", topic, err)
