"""The API's one long-lived MQTT session (account svc-api), reopened whenever it drops.

It publishes commands and gateway configs, and receives command results and gateway status.
Messages received are queued and handled one at a time by `handle`, off the receive path, so
a slow database never blocks the MQTT socket.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

from cityops import wire
from cityops.backoff import Backoff
from cityops.errors import BrokerUnavailable
from cityops.mqtt import MqttConnection
from cityops.settings import Settings, deployment_of
from cityops.tls import service_tls_context

log = logging.getLogger(__name__)
Handler = Callable[[str, bytes], Awaitable[None]]
OnConnect = Callable[[], Awaitable[None]]

RESULTS_TOPICS = f"{wire.TOPIC_ROOT}/+/command-results/+"
STATUS_FILTER = f"{wire.TOPIC_ROOT}/+/status"


def subscriptions(settings: Settings) -> list[tuple[str, int]]:
    """The API processes of one deployment share the results (each handled once) in a group
    of that deployment: another deployment on the same broker gets its own copy instead of
    taking some (issue #13: 7 of 20 commands `expired` in the database that sent them).
    Status is retained, and retained messages are not sent to shared subscriptions, so every
    process reads it. Ingestion publishes alarm steps under the deployment's internal root;
    every API process fans them out to its SSE clients."""
    deployment = deployment_of(settings)
    results = wire.shared(wire.deployment_group("api", deployment), RESULTS_TOPICS)
    alarms = f"{wire.internal_root(deployment)}/alarms/+"
    return [(results, 1), (STATUS_FILTER, 1), (alarms, 1)]


class MqttLink:
    def __init__(self, settings: Settings, handle: Handler, on_connect: OnConnect) -> None:
        self.settings = settings
        self.handle = handle
        self.on_connect = on_connect
        self.conn: MqttConnection | None = None
        self.connected = asyncio.Event()
        self.inbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=10_000)
        # built now: a wrong certificate setting stops the API at start, naming the setting
        self.tls_context = service_tls_context(settings, "api")

    def _connection(self) -> MqttConnection:
        s = self.settings
        return MqttConnection(
            s.mqtt_url,
            client_id=f"api-{uuid.uuid4().hex[:12]}",
            username=s.api_mqtt_username,
            password=s.api_mqtt_password.get_secret_value(),
            on_message=self._receive,
            tls_context=self.tls_context,
        )

    def _receive(self, topic: str, payload: bytes, _mid: int, _qos: int) -> None:
        try:
            self.inbox.put_nowait((topic, payload))
        except asyncio.QueueFull:
            log.warning("mqtt: inbox full, dropped a message on %s", topic)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._connect_loop())
            tasks.create_task(self._handle_loop())

    async def _connect_loop(self) -> None:
        backoff, was_up = Backoff(), True
        while True:
            conn = self._connection()
            try:
                await conn.connect()
                await conn.subscribe(subscriptions(self.settings))
            except BrokerUnavailable as err:
                if was_up:
                    log.warning("mqtt: broker unavailable: %s", err)
                    was_up = False
                await conn.close()
                await asyncio.sleep(backoff.next_delay())
                continue
            log.info("mqtt: connected as %s", self.settings.api_mqtt_username)
            was_up = True
            backoff.reset()
            self.conn = conn
            self.connected.set()
            try:
                try:
                    await self.on_connect()
                except Exception:
                    log.exception("mqtt: after-connect work failed")
                assert conn.closed is not None
                # shielded: cancelling us must not cancel the future close() relies on
                reason = await asyncio.shield(conn.closed)
                log.warning("mqtt: connection lost: %s", reason)
            finally:
                self.connected.clear()
                self.conn = None
                await conn.close()

    async def _handle_loop(self) -> None:
        while True:
            topic, payload = await self.inbox.get()
            try:
                await self.handle(topic, payload)
            except Exception:
                log.exception("mqtt: handling a message on %s failed", topic)

    async def publish(
        self, topic: str, payload: bytes, *, retain: bool = False, timeout_s: float = 5.0
    ) -> None:
        """Publish with QoS 1 and wait for the PUBACK; BrokerUnavailable when not possible."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.connected.wait()
                conn = self.conn
                if conn is None:
                    raise BrokerUnavailable("not connected to the broker")
                await conn.publish(topic, payload, qos=1, retain=retain)
        except TimeoutError as err:
            raise BrokerUnavailable(f"broker did not accept the message in {timeout_s}s") from err
