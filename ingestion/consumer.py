"""The ingest worker: a shared subscription, batches by size or time, ack after commit.

Messages are acknowledged to the broker only once their rows (or dead letters) are
committed. The broker stops sending when `ingest_max_inflight_messages` are unacknowledged
(the session's Receive Maximum), so a slow or absent database slows the broker down instead of
filling this process's memory. After the commit and the acks, the rules see the new readings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import psycopg

from cityops import wire
from cityops.backoff import Backoff, wait_for_port
from cityops.errors import BrokerUnavailable, SinkUnavailable, StoreRejected
from cityops.settings import Settings, deployment_of
from cityops.tls import service_tls_context
from ingestion.batcher import Batcher, Message
from ingestion.decode import DeadLetter, DecodedBatch, Decoder
from ingestion.jobs import Jobs
from ingestion.latest import repair
from ingestion.metrics import IngestMetrics
from ingestion.mqtt_session import LeanMqttSession
from ingestion.pipeline import StorePipeline, after
from ingestion.receipts import receipt_messages
from ingestion.registry import RegistryWatcher
from ingestion.retention import retention_plan
from ingestion.rules.engine import RuleEngine
from ingestion.sink import Sink, StoreResult, prepare

log = logging.getLogger(__name__)
LEAVE_DRAIN_S = 10.0
YIELD_EVERY_BYTES = 64_000  # about a millisecond of decoding
POINT_RELOAD_MIN_INTERVAL_S = 1.0  # a device registered a moment ago is learnt fast


class IngestWorker:
    def __init__(self, settings: Settings, client_id: str) -> None:
        self.settings = settings
        self.client_id = client_id
        # built now: a wrong certificate setting stops the worker at start, naming the setting
        self.tls_context = service_tls_context(settings, "ingest")
        url = settings.database_url.get_secret_value()
        self.stores = StorePipeline(url, settings.ingest_store_connections,
                                    settings.ingest_keep_latest,
                                    settings.ingest_latest_every_ms)
        self.decoder = Decoder({}, max_past_s=settings.ingest_max_past_s,
                               max_future_s=settings.ingest_max_future_s,
                               on_foreign=lambda: self.metrics.foreign_messages.inc())
        self.registry = RegistryWatcher(url, self.decoder, settings.ingest_registry_refresh_s)
        self.batcher = Batcher(settings.ingest_batch_max_readings,
                               settings.ingest_max_inflight_messages)
        self.stored_readings = 0
        self.dead_letters = 0
        self._points_loaded_at = 0.0
        self.metrics = IngestMetrics()
        self.rules = RuleEngine(url, settings.ingest_rules_reload_s)
        self.conn: LeanMqttSession | None = None
        self.jobs = Jobs(
            url, self.metrics, self._publish_internal,
            offline_check_s=settings.ingest_offline_check_s,
            rollup_refresh_s=settings.ingest_rollup_refresh_s,
            rollup_duty=settings.ingest_rollup_duty,
            retention_check_s=settings.ingest_retention_check_s,
            retention_plan=retention_plan(settings.ingest_retention_days),
            rules_reload_s=settings.ingest_rules_reload_s,
            deployment=deployment_of(settings),
        )

    async def _publish_internal(self, topic: str, payload: bytes) -> None:
        """QoS 1 on the worker's own session (svc-ingest may write cityops/v1/_internal/#)."""
        conn = self.conn
        if conn is None or not conn.is_connected:
            raise BrokerUnavailable("not connected")
        await asyncio.wait_for(conn.publish(topic, payload, qos=1), 10)

    def _on_message(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        self.batcher.add(topic, payload, mid, qos)
        self.metrics.received += 1

    def _connection(self) -> LeanMqttSession:
        s = self.settings
        return LeanMqttSession(
            s.mqtt_url,
            client_id=self.client_id,
            username=s.ingest_mqtt_username,
            password=s.ingest_mqtt_password.get_secret_value(),
            clean_start=False,
            session_expiry_s=s.ingest_session_expiry_s,
            on_message=self._on_message,
            receive_maximum=min(65535, s.ingest_max_inflight_messages),
            tls_context=self.tls_context,
        )

    async def run(self) -> None:
        if self.settings.ingest_metrics_port:
            # several workers on one host: slot n serves on the base port + n - 1
            tail = self.client_id.rsplit("-", 1)[-1]
            offset = int(tail) - 1 if tail.isdigit() else 0
            port = self.settings.ingest_metrics_port + offset
            self.metrics.serve(port, self.settings.ingest_metrics_host)
        await self._connect_sink()
        jobs = asyncio.create_task(self.jobs.run())
        registry = asyncio.create_task(self.registry.run())
        repair = asyncio.create_task(self._repair_latest())
        try:
            await self._consume()
        finally:
            for task in (jobs, registry, repair):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self._write_latest_now()
            await self.jobs.close()
            await self.rules.close()
            await self.stores.close()

    async def _consume(self) -> None:
        backoff = Backoff()
        while True:
            conn = self._connection()
            try:
                await conn.connect()
                group = wire.deployment_group(self.settings.ingest_group,
                                              deployment_of(self.settings))
                topic = wire.shared(group, wire.TELEMETRY_SUBSCRIPTION)
                await conn.subscribe([(topic, 1)])
            except BrokerUnavailable as err:
                # once per outage: with a 5 s cap, every attempt would be a line
                (log.warning if backoff.attempt == 0 else log.debug)(
                    "ingest: broker unavailable: %s", err)
                await conn.close()
                # back at once when the broker's port accepts again: agents keep their batches
                # until this worker commits them, and a full queue drops the oldest meanwhile
                await wait_for_port(conn.address.host, conn.address.port, backoff.next_delay())
                continue
            backoff.reset()
            self.conn = conn
            log.info("ingest %s: subscribed to %s", self.client_id, topic)
            try:
                await self._flush_loop(conn)
            except BrokerUnavailable as err:
                log.warning("ingest: broker connection lost: %s", err)
            except asyncio.CancelledError:
                await self._leave(conn, topic)
                raise
            finally:
                await self.stores.drain()
                # unacked messages are redelivered by the broker: drop our copies
                self.batcher.clear()
                self.conn = None
                await conn.close()

    async def _leave(self, conn: LeanMqttSession, topic: str) -> None:
        """A clean stop: no new messages, store what arrived, then end the session so the
        broker stops keeping a share of the traffic for a worker that is gone.

        Messages already queued for this session keep coming after the unsubscribe; ending
        the session would drop them. So if they do not dry up within LEAVE_DRAIN_S, the worker
        stores what it holds and leaves the session (and its backlog) for its successor.
        """
        try:
            await conn.unsubscribe([topic])
            deadline = time.monotonic() + LEAVE_DRAIN_S
            quiet_since = len(self.batcher.messages)
            while time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                if self.batcher.messages:
                    await self._flush(conn)
                elif quiet_since == 0:
                    break
                quiet_since = len(self.batcher.messages)
            while self.batcher.messages:
                await self._flush(conn)
            await self.stores.drain()
            if time.monotonic() >= deadline:
                await conn.close()
                log.warning("ingest %s: stopped with a backlog: session kept for the next"
                            " worker in this slot", self.client_id)
                return
            await conn.close(end_session=True)
            log.info("ingest %s: stopped cleanly", self.client_id)
        except (BrokerUnavailable, TimeoutError) as err:
            log.warning("ingest %s: unclean stop, session kept: %s", self.client_id, err)

    async def _connect_sink(self) -> None:
        backoff = Backoff()
        while True:
            try:
                await self.stores.connect()
                await self._reload_points()
                return
            except SinkUnavailable as err:
                log.warning("ingest: %s", err)
                await self.stores.close()
                await asyncio.sleep(backoff.next_delay())

    async def _reload_points(self) -> None:
        self.decoder.points = await self.stores.primary.load_points()
        self._points_loaded_at = time.monotonic()

    async def _flush_loop(self, conn: LeanMqttSession) -> None:
        wait_s = self.settings.ingest_batch_max_wait_ms / 1000
        assert conn.closed is not None
        while not conn.closed.done():
            if not self.batcher.is_full:  # else a whole batch is waiting already
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.batcher.full.wait(), wait_s)
            self.batcher.full.clear()
            if self.batcher.messages:
                await self._flush(conn)
            elif self.stores.latest_due():  # quiet: write what the last stores left pending
                await self.stores.submit(self._store_latest)
        raise BrokerUnavailable(f"closed: {conn.closed.result()}")

    async def _flush(self, conn: LeanMqttSession) -> None:
        """Decode what arrived while earlier batches are being stored, then store it.

        Decoding (CPU in this process) overlaps the COPYs and commits of the batches before
        (the database's CPU and disk): on a small machine that is most of the throughput.
        """
        taken = self.batcher.take()
        self.metrics.pending_messages.set(len(self.batcher.messages))
        started = time.perf_counter()
        batches, dead = await self._decode_all(taken)
        prepare(batches, self.stores.marks_minutes)
        await self.stores.submit(
            lambda sink, previous: self._store(conn, sink, previous, taken, batches, dead,
                                               started))
        await asyncio.sleep(0)  # let it send its first statement before we decode on

    async def _store_latest(self, sink: Sink, _previous: asyncio.Task[None] | None) -> None:
        """readings_latest alone: a failure leaves the rows pending for the next store."""
        try:
            await sink.store([], [])
        except (SinkUnavailable, StoreRejected) as err:
            log.debug("ingest %s: latest values not written yet: %s", self.client_id, err)

    async def _write_latest_now(self) -> None:
        """At a stop: the pending latest values, unless the database is away."""
        latest = self.stores.latest
        if latest is None or not latest.pending:
            return
        latest.hurry()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._store_latest(self.stores.primary, None), 10)

    async def _repair_latest(self) -> None:
        """readings_latest as the readings say, for what a worker that died held pending
        (ingestion/latest.py); in the background, once."""
        if self.stores.latest is None:
            return
        backoff = Backoff(cap_s=10)
        while True:
            try:
                moved = await repair(self.settings.database_url.get_secret_value())
                break
            except psycopg.OperationalError as err:
                log.debug("ingest %s: latest values not repaired yet: %s", self.client_id, err)
                await asyncio.sleep(backoff.next_delay())
        log.info("ingest %s: readings_latest checked against readings, %d rows moved forward",
                 self.client_id, moved)

    async def _store(
        self, conn: LeanMqttSession, sink: Sink, previous: asyncio.Task[None] | None,
        taken: list[Message], batches: list[DecodedBatch], dead: list[DeadLetter],
        started: float,
    ) -> None:
        try:
            result = await self._store_retrying(sink, batches, dead)
        except StoreRejected as err:
            # one bad message must not block the rest forever (it would be redelivered and
            # refused again): store in halves, dead-lettering what is refused alone
            log.warning("ingest %s: %s; storing in parts", self.client_id, err.detail)
            result, dead = await self._store_singly(sink, taken)
        await after(previous)  # acks, counts and rules in arrival order
        for _topic, _payload, mid, qos in taken:
            conn.ack(mid, qos)
        self._send_receipts(conn, batches, dead)
        self._count(result, dead, len(taken), time.perf_counter() - started)
        await self._evaluate_rules(result)

    def _send_receipts(self, conn: LeanMqttSession, batches: list[DecodedBatch],
                       dead: list[DeadLetter]) -> None:
        """Committed: the agents may forget these batches (ingestion/receipts.py). QoS 0: a
        lost receipt only costs a resend, which the batch key makes harmless."""
        for topic, payload in receipt_messages(batches, dead):
            if not conn.is_connected:
                return
            sent = conn.publish(topic, payload, qos=0)
            if sent.done() and sent.exception() is not None:
                return

    async def _store_retrying(
        self, sink: Sink, batches: list[DecodedBatch], dead: list[DeadLetter]
    ) -> StoreResult:
        backoff = Backoff(cap_s=10)
        failing = False
        while True:
            try:
                result = await sink.store(batches, dead)
                break
            except SinkUnavailable as err:
                # keep the messages unacked and retry: the broker holds the rest meanwhile, and
                # stops sending once Receive Maximum messages are unacknowledged
                self.metrics.db_retries.inc()
                if not failing:
                    log.warning("ingest %s: %s; retrying until it is back", self.client_id, err)
                    failing = True
                await asyncio.sleep(backoff.next_delay())
        if failing:
            log.info("ingest %s: database back, batch stored", self.client_id)
        return result

    async def _store_singly(
        self, sink: Sink, messages: list[Message]
    ) -> tuple[StoreResult, list[DeadLetter]]:
        """Store halves of a refused flush until each refused message is alone, then
        dead-letter it (`rejected_by_database`). k refused messages among n cost about
        2k·log2(n) transactions instead of n: one gateway's bad input no longer makes every
        gateway's traffic go one message per transaction (issue #22: lag 0.1 s -> 17 s)."""
        total, all_dead = StoreResult(), []
        parts = [messages[len(messages) // 2:], messages[:len(messages) // 2]]
        while parts:
            part = parts.pop()
            if not part:
                continue
            decoded = [self.decoder.decode(topic, payload) for topic, payload, _m, _q in part]
            batches = [b for b, _dead in decoded if b is not None]
            dead = [d for _b, dead in decoded for d in dead]
            try:
                result = await self._store_retrying(sink, batches, dead)
            except StoreRejected as err:
                if len(part) > 1:
                    parts += [part[len(part) // 2:], part[:len(part) // 2]]
                    continue
                topic, payload, _mid, _qos = part[0]
                dead = [DeadLetter(topic, payload, "rejected_by_database", err.detail)]
                result = await self._store_retrying(sink, [], dead)
            total.readings += result.readings
            total.fresh += result.fresh
            total.duplicates += result.duplicates
            all_dead += dead
        return total, all_dead

    def _count(self, result: StoreResult, dead: list[DeadLetter], messages: int,
               elapsed_s: float) -> None:
        m = self.metrics
        self.stored_readings += result.readings
        self.dead_letters += len(dead)
        m.readings.inc(result.readings)
        m.messages.inc(messages)
        m.duplicates.inc(result.duplicates)
        m.batch_readings.observe(result.readings)
        m.batch_messages.observe(messages)
        m.commit_seconds.observe(elapsed_s)
        for d in dead:
            m.dead_letters.labels(d.reason).inc()
        newest = max((r[0] for b in result.fresh for r in b.numeric[-1:] + b.text[-1:]),
                     default=None)
        if newest is not None:
            m.lag_seconds.set(max(0.0, time.time() - newest / 1000))

    async def _evaluate_rules(self, result: StoreResult) -> None:
        """After commit: the readings are safe whatever happens here, so a failure is logged
        and the next evaluation of the same rule and device catches up (engine.CATCH_UP_MS)."""
        if not result.fresh:
            return
        started = time.perf_counter()
        try:
            await self.rules.refresh()
            if not self.rules.watches(result.fresh):
                return
            transitions = await self.rules.on_stored(result.fresh)
        except (SinkUnavailable, psycopg.OperationalError) as err:
            log.warning("ingest %s: rules not evaluated: %s", self.client_id, err)
            await self.rules.close()
            return
        self.metrics.rule_seconds.observe(time.perf_counter() - started)
        if transitions:
            self.metrics.alarm_transitions.inc(transitions)
            self.jobs.wake.set()  # publish the alarm events now

    async def _decode_all(
        self, messages: list[Message]
    ) -> tuple[list[DecodedBatch], list[DeadLetter]]:
        batches, dead = await self._decode(messages)
        stale = time.monotonic() - self._points_loaded_at > POINT_RELOAD_MIN_INTERVAL_S
        if any(d.reason == "unknown_point" for d in dead) and stale:
            # a device registered since start: learn it, then decode this flush again
            await self.stores.drain()  # the connections must be free of a transaction
            backoff = Backoff(cap_s=10)
            while True:
                try:
                    await self._reload_points()
                    break
                except SinkUnavailable as err:
                    log.warning("ingest %s: cannot reload points: %s", self.client_id, err)
                    await asyncio.sleep(backoff.next_delay())
            batches, dead = await self._decode(messages)
        return batches, dead

    async def _decode(
        self, messages: list[Message]
    ) -> tuple[list[DecodedBatch], list[DeadLetter]]:
        """Decode, giving the event loop a turn about every millisecond: the batch being
        stored meanwhile then moves on as soon as the database answers (claim, COPY,
        commit) instead of waiting for the whole decode, which keeps the database busy."""
        batches: list[DecodedBatch] = []
        dead: list[DeadLetter] = []
        since_yield = 0
        for topic, payload, _mid, _qos in messages:
            batch, rejected = self.decoder.decode(topic, payload)
            if batch is not None:
                batches.append(batch)
            dead.extend(rejected)
            since_yield += len(payload)
            if since_yield > YIELD_EVERY_BYTES:
                since_yield = 0
                await asyncio.sleep(0)
        return batches, dead
