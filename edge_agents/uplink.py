"""The agent's MQTT uplink: drains the local queue to the broker, reconnecting forever.

A batch leaves the queue only when ingestion's commit receipt names it (docs/wire.md): the
broker's PUBACK only says the broker has it, and a broker that crashes before a worker took
it loses it. So on every new connection the whole queue is sent again, and within a session a
batch PUBACKed but still without a receipt `receipt_timeout_s` after a later batch got one
(its receipt lost, or the message stuck with a worker that died) is sent again too.
Ingestion's batch key makes every resend harmless.

After an outage the backlog must not starve live data: batches queued after the session
started ("live") take at least half of the publish window, the backlog the rest, oldest
first. Ingestion is idempotent per batch key, so the order across batches does not matter for
correctness, only for how fresh the control room's picture is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from cityops import wire
from cityops.backoff import Backoff, wait_for_port
from cityops.errors import BrokerUnavailable, WireError
from cityops.mqtt import NO_MATCHING_SUBSCRIBERS, MqttConnection, Will, client_tls_context
from edge_agents import readings
from edge_agents.config import AgentConfig
from edge_agents.queue import LocalQueue, QueuedBatch

log = logging.getLogger(__name__)


def telemetry_payload(stream: str, batch: QueuedBatch) -> bytes:
    # readings are stored already encoded; only the key is wrapped around them
    return readings.telemetry_payload(stream, batch.seq, batch.readings_json)


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
        self.resent_batches = 0
        self.committed_batches = 0
        self.unrouted = False
        self.receipts = Receipts(queue, config.queue.receipt_timeout_s)

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
            tls_context=client_tls_context(broker.ca_file, broker.cert_file, broker.key_file)
            if broker.url.startswith("mqtts:") else None,
        )

    def _deliver(self, topic: str, payload: bytes, _mid: int, _qos: int) -> None:
        if topic == wire.receipts_topic(self.config.gateway):
            task = asyncio.get_running_loop().create_task(self._commit(payload))
            task.add_done_callback(_log_failure)
        elif self.on_message is not None:
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
                # back at once when the broker's port accepts again, not after the backoff
                await wait_for_port(conn.address.host, conn.address.port, backoff.next_delay())
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
        # receipts first: nothing is sent before the agent can hear what was committed
        await conn.subscribe([(wire.receipts_topic(gateway), 1),
                              (f"{wire.TOPIC_ROOT}/{gateway}/commands/+", 1),
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
        # a new session sends the whole queue again from its start (the cursors), so what
        # waited for a receipt in the last session is simply sent again
        cursors = _Cursors(self.queue)
        self.receipts.restart()
        # batches the broker accepted with "no matching subscribers" (ingestion not subscribed,
        # e.g. right after a broker restart lost its shared subscriptions), and batches overdue
        # for a receipt: sent again
        held: list[QueuedBatch] = []
        hold_until, hold_backoff = 0.0, Backoff(initial_s=0.5, cap_s=5.0)
        while True:
            # clear before peeking: an append after this point wakes the wait below
            self.new_data.clear()
            overdue = await self.receipts.overdue()
            held += overdue
            self.resent_batches += len(overdue)
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
                if self.receipts.waiting:  # look for overdue batches now and then
                    timeout = CHECK_RECEIPTS_S if timeout is None else min(timeout,
                                                                           CHECK_RECEIPTS_S)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.new_data.wait(), timeout)
                continue
            waiters: set[asyncio.Future] = set(inflight)
            new_data = asyncio.ensure_future(self.new_data.wait())
            if len(inflight) < window and not holding:
                waiters.add(new_data)
            done, _ = await asyncio.wait(waiters, timeout=CHECK_RECEIPTS_S,
                                         return_when=asyncio.FIRST_COMPLETED)
            new_data.cancel()
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
                    # the broker has it; the queue keeps it until its receipt
                    self.receipts.published(batch.seq)
                    self.published_batches += 1
                    hold_backoff.reset()
                    self._note_unrouted(False)

    async def _commit(self, payload: bytes) -> None:
        """A commit receipt: forget the batches it names (of this queue's stream only)."""
        try:
            receipt: wire.Receipt = wire.decode(wire.Receipt, payload)
        except WireError as err:
            log.warning("gateway %s: receipt refused: %s", self.config.gateway, err.detail)
            return
        if str(receipt.stream) != self.queue.stream:
            return  # a queue file made anew since: those batches are not ours any more
        self.committed_batches += await self.receipts.committed(receipt.seqs)

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


CHECK_RECEIPTS_S = 1.0


class Receipts:
    """Which published batches still wait for their commit receipt, and which are overdue.

    Batches are recorded in PUBACK order. A batch is overdue once a batch PUBACKed after it
    has had its receipt for `timeout_s` and it has not: ingestion is working, so its receipt
    was lost or the message is stuck (e.g. with a worker that died). While no receipts come
    at all (ingestion down), nothing is overdue: the broker holds the messages meanwhile, and
    resending would only pile copies into its queue.
    """

    def __init__(self, queue: LocalQueue, timeout_s: float) -> None:
        self.queue, self.timeout_s = queue, timeout_s
        self.waiting: dict[int, float] = {}  # seq -> PUBACK time, in PUBACK order
        self._overtaken: dict[int, float] = {}  # seq -> when a later batch got its receipt
        self._receipted_upto = 0.0  # the latest PUBACK time among receipted batches
        self._checked_at = 0.0

    def restart(self) -> None:
        self.waiting.clear()
        self._overtaken.clear()
        self._receipted_upto = 0.0

    def published(self, seq: int) -> None:
        self.waiting.pop(seq, None)  # a resend: its place is at the end now
        self._overtaken.pop(seq, None)
        self.waiting[seq] = time.monotonic()

    async def committed(self, seq_ranges: list[tuple[int, int]]) -> int:
        """Forget the receipted batches; returns how many were still queued."""
        removed = await self.queue.remove_ranges(seq_ranges)
        for first, last in seq_ranges:
            if last - first < len(self.waiting):
                seqs: list[int] = list(range(first, last + 1))
            else:  # a wide range: walk what waits instead
                seqs = [s for s in self.waiting if first <= s <= last]
            for seq in seqs:
                at = self.waiting.pop(seq, None)
                self._overtaken.pop(seq, None)
                if at is not None:
                    self._receipted_upto = max(self._receipted_upto, at)
        return removed

    async def overdue(self) -> list[QueuedBatch]:
        now, due = time.monotonic(), []
        if now - self._checked_at < CHECK_RECEIPTS_S:
            return []  # the send loop turns per PUBACK: look once a second is enough
        self._checked_at = now
        for seq, at in self.waiting.items():
            if at >= self._receipted_upto:
                break  # PUBACK order: nothing later has been overtaken
            since = self._overtaken.setdefault(seq, now)
            if now - since >= self.timeout_s:
                due.append(seq)
        if not due:
            return []
        for seq in due:
            del self.waiting[seq]
            del self._overtaken[seq]
        # those no longer queued were receipted meanwhile, or dropped by a full queue
        return await self.queue.get(due)


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
