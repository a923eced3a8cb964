"""The agent's MQTT uplink: drains the local queue to the broker, reconnecting forever.

A batch leaves the queue only after its PUBACK. On a lost connection every unacknowledged
batch is simply sent again from the queue on the next connection: ingestion's batch key makes
that harmless.

After an outage the backlog must not starve live data: batches queued after the session
started ("live") take at least half of the publish window, the backlog the rest, oldest
first. Ingestion is idempotent per batch key, so the order across batches does not matter for
correctness, only for how fresh the control room's picture is.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from cityops import wire
from cityops.errors import BrokerUnavailable
from cityops.mqtt import NO_MATCHING_SUBSCRIBERS, MqttConnection, Will
from edge_agents.backoff import Backoff
from edge_agents.config import AgentConfig
from edge_agents.queue import LocalQueue, QueuedBatch

log = logging.getLogger(__name__)


def telemetry_payload(stream: str, batch: QueuedBatch) -> bytes:
    # readings are stored already encoded; only the key is wrapped around them
    head = f'{{"stream":"{stream}","seq":{batch.seq},"readings":'.encode()
    return head + batch.readings_json + b"}"


class Uplink:
    def __init__(
        self,
        config: AgentConfig,
        queue: LocalQueue,
        status: Callable[[wire.GatewayState], wire.Status],
        on_message: Callable[[str, bytes], None] | None = None,
        on_connected: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self.queue = queue
        self.status = status
        self.on_message = on_message
        self.on_connected = on_connected
        self.new_data = asyncio.Event()
        self.connected = asyncio.Event()
        self.conn: MqttConnection | None = None
        self.published_batches = 0
        self.replayed_batches = 0
        self.unrouted = False
        # batches acknowledged lately, resent on the next session (ingestion drops repeats)
        self._recent: collections.deque[tuple[float, QueuedBatch]] = collections.deque()
        self._recent_bytes = 0

    def _connection(self) -> MqttConnection:
        gateway, broker = self.config.gateway, self.config.broker
        offline = wire.encode(self.status(wire.GatewayState.OFFLINE))
        return MqttConnection(
            broker.url,
            client_id=f"agent-{gateway}",
            username=broker.username or gateway,
            password=broker.password(),
            will=Will(wire.status_topic(gateway), offline),
            on_message=self._deliver,
        )

    def _deliver(self, topic: str, payload: bytes, _mid: int, _qos: int) -> None:
        if self.on_message is not None:
            self.on_message(topic, payload)

    async def run(self) -> None:
        backoff = Backoff()
        was_up = True
        while True:
            conn = self._connection()
            try:
                await conn.connect()
            except BrokerUnavailable as err:
                if was_up:
                    log.warning("gateway %s: broker unreachable: %s", self.config.gateway, err)
                    was_up = False
                await asyncio.sleep(backoff.next_delay())
                continue
            log.info("gateway %s: connected to broker", self.config.gateway)
            was_up = True
            backoff.reset()
            self.conn = conn
            self.connected.set()
            try:
                await self._session(conn)
            except BrokerUnavailable as err:
                log.warning("gateway %s: connection lost: %s", self.config.gateway, err)
            finally:
                self.connected.clear()
                self.conn = None
                await conn.close()

    async def _session(self, conn: MqttConnection) -> None:
        gateway = self.config.gateway
        await conn.publish(
            wire.status_topic(gateway), wire.encode(self.status(wire.GatewayState.ONLINE)),
            retain=True,
        )
        await conn.subscribe([(f"{wire.TOPIC_ROOT}/{gateway}/commands/+", 1),
                              (wire.config_topic(gateway), 1)])
        sender = asyncio.create_task(self._send_loop(conn))
        if self.on_connected is not None:
            hook = asyncio.create_task(self.on_connected())
            hook.add_done_callback(_log_failure)
        try:
            assert conn.closed is not None
            await asyncio.wait({sender, conn.closed}, return_when=asyncio.FIRST_COMPLETED)
            if sender.done():
                sender.result()
            raise BrokerUnavailable(f"closed: {conn.closed.result()}")
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, BrokerUnavailable):
                await sender

    async def _send_loop(self, conn: MqttConnection) -> None:
        topic = wire.telemetry_topic(self.config.gateway)
        window = self.config.queue.publish_window
        loop = asyncio.get_running_loop()
        inflight: dict[asyncio.Future[int | None], QueuedBatch] = {}
        cursors = _Cursors(self.queue)
        # batches the broker accepted with "no matching subscribers" (ingestion not subscribed,
        # e.g. right after a broker restart lost its shared subscriptions): kept and resent
        held: list[QueuedBatch] = self._take_replay()
        replay = {b.seq for b in held}
        hold_until, hold_backoff = 0.0, Backoff(initial_s=0.5, cap_s=5.0)
        while True:
            # clear before peeking: an append after this point wakes the wait below
            self.new_data.clear()
            free = window - len(inflight)
            holding = bool(held) and loop.time() < hold_until
            if free > 0 and not holding:
                held.sort(key=lambda b: b.seq)
                batches, held = held[:free], held[free:]
                if free > len(batches):
                    batches += await cursors.next(free - len(batches))
                for batch in batches:
                    fut = conn.publish(topic, telemetry_payload(self.queue.stream, batch))
                    inflight[fut] = batch
            if not inflight:
                timeout = max(0.0, hold_until - loop.time()) if held else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.new_data.wait(), timeout)
                continue
            waiters: set[asyncio.Future] = set(inflight)
            new_data = asyncio.ensure_future(self.new_data.wait())
            if len(inflight) < window and not holding:
                waiters.add(new_data)
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            new_data.cancel()
            acked = []
            try:
                for fut in done:
                    if fut is new_data:
                        continue
                    batch = inflight.pop(fut)
                    # a refused publish raises and ends the session; the queue resends
                    if fut.result() == NO_MATCHING_SUBSCRIBERS:
                        held.append(batch)
                        hold_until = loop.time() + hold_backoff.next_delay()
                        self._note_unrouted(True)
                    else:
                        acked.append(batch.seq)
                        hold_backoff.reset()
                        self._note_unrouted(False)
                        self._remember(batch)
            finally:
                await self.queue.remove(acked)
                replayed = sum(1 for seq in acked if seq in replay)
                self.replayed_batches += replayed
                self.published_batches += len(acked) - replayed

    def _remember(self, batch: QueuedBatch) -> None:
        q = self.config.queue
        now = time.monotonic()
        self._recent.append((now, batch))
        self._recent_bytes += len(batch.readings_json)
        while self._recent and (self._recent[0][0] < now - q.replay_window_s
                                or self._recent_bytes > q.replay_max_bytes):
            self._recent_bytes -= len(self._recent.popleft()[1].readings_json)

    def _take_replay(self) -> list[QueuedBatch]:
        horizon = time.monotonic() - self.config.queue.replay_window_s
        batches = [b for t, b in self._recent if t >= horizon]
        self._recent.clear()
        self._recent_bytes = 0
        if batches:
            log.info("gateway %s: resending %d recently acknowledged batches",
                     self.config.gateway, len(batches))
        return batches

    def _note_unrouted(self, unrouted: bool) -> None:
        if unrouted and not self.unrouted:
            log.warning("gateway %s: no subscriber takes telemetry (ingestion down?); "
                        "batches stay queued", self.config.gateway)
        elif self.unrouted and not unrouted:
            log.info("gateway %s: telemetry has a subscriber again", self.config.gateway)
        self.unrouted = unrouted

    async def publish_result(self, command_id: str, payload: bytes) -> bool:
        """Publish a command result; True once the broker acknowledged it."""
        conn = self.conn
        if conn is None or not conn.is_connected:
            return False
        try:
            code = await asyncio.wait_for(
                conn.publish(wire.command_result_topic(self.config.gateway, command_id), payload),
                10.0,
            )
        except (BrokerUnavailable, TimeoutError):
            return False
        return code != NO_MATCHING_SUBSCRIBERS  # nobody listening: try again later

    async def publish_status(self) -> None:
        conn = self.conn
        if conn is None or not conn.is_connected:
            return
        with contextlib.suppress(BrokerUnavailable):
            await conn.publish(
                wire.status_topic(self.config.gateway),
                wire.encode(self.status(wire.GatewayState.ONLINE)),
                retain=True,
            )


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("on-connect hook failed: %r", task.exception())


class _Cursors:
    """Which batches a session sends next: live ones (queued after the session started) take
    at least half of the free window, the backlog of earlier sessions the rest, oldest first."""

    def __init__(self, queue: LocalQueue) -> None:
        self.queue = queue
        self.live_from = queue.last_seq
        self.backlog = 0
        self.live = self.live_from

    async def next(self, free: int) -> list[QueuedBatch]:
        backlog_left = self.backlog < self.live_from
        live = await self.queue.peek(self.live, max(1, free // 2) if backlog_left else free)
        if live:
            self.live = live[-1].seq
        old: list[QueuedBatch] = []
        if backlog_left and free > len(live):
            old = await self.queue.peek(self.backlog, free - len(live), self.live_from)
            self.backlog = old[-1].seq if old else self.live_from
        return [*live, *old]
