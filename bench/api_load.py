"""A steady ingest load for `make bench-api`: bench-ingest's rig (a database, a Mosquitto and
a `cityops ingest` worker of its own, bench/ingest.py) and its publisher (`mosquitto_pub -l`,
50-reading messages made by byte substitution, bench/ingest_live.py), paced at a fixed rate
in a thread for as long as the API scenarios run. The readings go to the rig's database on
the same PostgreSQL server as the API's, so the server, the disk and the cores carry the
ingest work while the API answers."""

from __future__ import annotations

import threading
import time
import uuid

from bench.ingest import Rig
from bench.ingest_live import live_publisher
from cityops import wire

PER_MESSAGE = 50


class IngestLoad:
    def __init__(self, rate_rps: float) -> None:
        self.rate_rps = rate_rps
        self.rig: Rig | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._from: tuple[float, float] = (0.0, 0.0)  # (stored, time) when measuring began

    def start(self) -> None:
        self.rig = Rig()
        self.rig.start_worker()
        self._thread = threading.Thread(target=self._publish, daemon=True)
        self._thread.start()
        # settle: the first seconds fill the worker's caches and the first chunk
        deadline = time.monotonic() + 60
        while self.rig.stored() < self.rate_rps * 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        self.mark()

    def mark(self) -> None:
        assert self.rig is not None
        self._from = (self.rig.stored(), time.monotonic())

    def committed_rps(self) -> float:
        """Readings/s committed since `mark()`."""
        assert self.rig is not None
        stored, at = self._from
        return (self.rig.stored() - stored) / max(time.monotonic() - at, 1e-6)

    def _publish(self) -> None:
        assert self.rig is not None
        rig = self.rig
        client, templates = live_publisher(rig, str(uuid.uuid4()), PER_MESSAGE)
        interval, seq = PER_MESSAGE / self.rate_rps, 0
        started = time.perf_counter()
        try:
            while not self._stop.is_set():
                due = int((time.perf_counter() - started) / interval) + 1
                while seq < due:
                    seq += 1
                    client.publish(wire.telemetry_topic(rig.gateway),
                                   templates.make(seq, int(time.time() * 1000)), qos=1)
                time.sleep(0.002)
        finally:
            client.loop_stop()
            client.disconnect()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
        if self.rig is not None:
            self.rig.close()
