"""A steady ingest load for `make bench-api`: bench-ingest's rig (a database, a Mosquitto and
a `cityops ingest` worker of its own, bench/ingest.py) and its publisher (`mosquitto_pub -l`,
50-reading messages made by byte substitution, bench/ingest_live.py), paced at a fixed rate
for as long as the API scenarios run. The readings go to the rig's database on the same
PostgreSQL server as the API's, so the server, the disk and the cores carry the ingest work
while the API answers.

The pacing loop runs in a process of its own, not in a thread of the bench: a thread would
take the bench's GIL every few milliseconds while the bench times the API's answers, and the
API client, busy flat out, would delay the publishing in turn. At the end (`stop`) the load
says where its CPU went, per reading committed: publisher (pacing + mosquitto_pub), broker,
worker, and the worker's database backends (`report`).
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from typing import TYPE_CHECKING

from bench.ingest import Rig, process_cpu_s

if TYPE_CHECKING:
    from multiprocessing.sharedctypes import Synchronized
    from multiprocessing.synchronize import Event

PER_MESSAGE = 50


def publish(port: int, gateway: str, password: str, names: list[tuple[str, str]],
            rate_rps: float, nice: int, stop: Event, published: Synchronized) -> None:
    """The pacing loop (a child process): `rate_rps` readings/s in PER_MESSAGE-reading
    messages through mosquitto_pub until `stop` is set. It stands for the field's gateways,
    other machines in a county: at the ingest worker's nice value (mosquitto_pub inherits
    it), so the readers' priority over ingestion is not undone by the load's own source.
    `published` counts the messages handed to mosquitto_pub."""
    import os

    from bench.ingest_live import LinePublisher, covering
    from cityops import wire

    os.nice(nice)
    client = LinePublisher(port, gateway, password)
    templates = covering(str(uuid.uuid4()), names, PER_MESSAGE)
    topic, interval, seq = wire.telemetry_topic(gateway), PER_MESSAGE / rate_rps, 0
    started = time.perf_counter()
    try:
        while not stop.is_set():
            due = int((time.perf_counter() - started) / interval) + 1
            while seq < due:
                seq += 1
                client.publish(topic, templates.make(seq, int(time.time() * 1000)), qos=1)
            published.value = seq
            time.sleep(0.002)
    finally:
        client.loop_stop()


class IngestLoad:
    def __init__(self, rate_rps: float, nice: int = 10) -> None:
        self.rate_rps, self.nice = rate_rps, nice
        self.rig: Rig | None = None
        self._ctx = multiprocessing.get_context("spawn")  # nothing of the bench inherited
        self._stop = self._ctx.Event()
        self._published = self._ctx.Value("q", 0, lock=False)  # messages, by the publisher
        self._publisher: multiprocessing.process.BaseProcess | None = None
        self._from: dict[str, float] = {}  # stored, time and CPU when measuring began
        self.report: dict[str, float] = {}

    def start(self) -> None:
        self.rig = Rig()
        self.rig.start_worker({"CITYOPS_INGEST_NICE": str(self.nice)})
        rig = self.rig
        self._publisher = self._ctx.Process(
            target=publish, daemon=True,
            args=(rig.broker.port, rig.gateway, rig.gateway_password, rig.point_names,
                  self.rate_rps, self.nice, self._stop, self._published))
        self._publisher.start()
        # settle: the first seconds fill the worker's caches and the first chunk
        deadline = time.monotonic() + 60
        while self.rig.stored() < self.rate_rps * 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        self.mark()

    def backlog(self) -> float:
        """Readings published and not yet committed (in the broker, the worker's batch)."""
        assert self.rig is not None
        return self._published.value * PER_MESSAGE - self.rig.stored()

    def drained(self, timeout_s: float = 60.0) -> float:
        """Waits until the backlog is what half a second of the rate leaves in flight, and
        says how long that took. A flat-out phase takes the cores from ingestion (which is
        the point: docs/ingestion.md) and leaves a backlog the broker then delivers at up to
        twice the rate: a scenario measured meanwhile would be measured under more than the
        load it names."""
        started = time.monotonic()
        while (self.backlog() > self.rate_rps * 0.5
               and time.monotonic() - started < timeout_s):
            time.sleep(0.1)
        return time.monotonic() - started

    def _cpu(self) -> dict[str, float]:
        assert self.rig is not None and self.rig.worker is not None
        publisher = 0.0
        if self._publisher is not None and self._publisher.pid is not None:
            pid = self._publisher.pid
            publisher = process_cpu_s(pid) + sum(process_cpu_s(c) for c in _children(pid))
        broker = self.rig.broker._proc.pid if self.rig.broker._proc is not None else 0
        return {"publisher": publisher, "broker": process_cpu_s(broker) if broker else 0.0,
                "worker": self.rig.cpu_s(), "database": self.rig.db_cpu_s()}

    def mark(self) -> None:
        assert self.rig is not None
        self._from = {"stored": self.rig.stored(), "at": time.monotonic()} | self._cpu()

    def committed_rps(self) -> float:
        """Readings/s committed since `mark()`."""
        assert self.rig is not None
        return ((self.rig.stored() - self._from["stored"])
                / max(time.monotonic() - self._from["at"], 1e-6))

    def _measure(self) -> None:
        """Where the load's CPU went since `mark()`: CPU us per reading committed, per part."""
        assert self.rig is not None
        readings = max(self.rig.stored() - self._from["stored"], 1.0)
        seconds = max(time.monotonic() - self._from["at"], 1e-6)
        now = self._cpu()
        self.report = {"committed_rps": round(readings / seconds)} | {
            f"{part}_us_per_reading": round((now[part] - self._from[part]) * 1e6 / readings, 2)
            for part in now}
        print("  ingest load: " + ", ".join(f"{k} {v:,}" for k, v in self.report.items()),
              flush=True)

    def stop(self) -> None:
        if self.rig is not None and self.rig.worker is not None and self._from:
            try:
                self._measure()
            except (OSError, ValueError) as err:  # a part already gone: no report
                print(f"  ingest load: no CPU report ({err})")
        self._stop.set()
        if self._publisher is not None:
            self._publisher.join(60)
        if self.rig is not None:
            self.rig.close()


def _children(pid: int) -> list[int]:
    from pathlib import Path

    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [int(c) for t in tasks
                for c in (t / "children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []
