"""What two choices of the write path cost, measured side by side in one `make bench-ingest`
run (bench/ingest.py):

- the latest-value table (readings_latest, kept by the worker's stores, ingestion/latest.py):
  the 50-reading drain rate with it and without it (`CITYOPS_INGEST_KEEP_LATEST=false`);
- the time index: the COPY ceiling with TimescaleDB's default B-tree on readings (time) (the
  old index) and with the BRIN of migration 091.

On a machine shared with other work a rate moves by a factor of two between samples, so both
are measured in alternating rounds in ABBA order (A B, B A, A B...: a load that rises or falls
through the run favours neither), reported as medians, and next to the rates the CPU each
side spent per row (the COPY's backend; the worker and its database backends), which the
other work on the machine moves far less.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

import psycopg

if TYPE_CHECKING:
    from bench.ingest import Rig

OLD_INDEX = "CREATE INDEX IF NOT EXISTS readings_time_idx ON readings (time DESC)"
NEW_INDEX = ("CREATE INDEX IF NOT EXISTS readings_time_brin ON readings USING brin (time)"
             " WITH (pages_per_range = 32)")


def _use_index(rig: Rig, old: bool) -> None:
    with psycopg.connect(rig.url, autocommit=True) as conn:
        conn.execute(OLD_INDEX if old else NEW_INDEX)
        conn.execute("DROP INDEX IF EXISTS " + ("readings_time_brin" if old
                                                else "readings_time_idx"))


def abba(first: str, second: str, rounds: int) -> list[str]:
    """A B, B A, A B...: each side equally often early and late in the run."""
    order: list[str] = []
    for r in range(rounds):
        order += [first, second] if r % 2 == 0 else [second, first]
    return order


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def ceiling_by_index(rig: Rig, seconds: float, rounds: int = 4) -> dict:
    """COPY ceiling (rows/s) and its backend's CPU per row, with the old B-tree and with the
    BRIN, `rounds` times each in ABBA order; the database keeps the BRIN (migration 091)."""
    from bench.ingest import copy_ceiling_cpu

    rates: dict[str, list[float]] = {"old": [], "new": []}
    cpu: dict[str, list[float]] = {"old": [], "new": []}
    try:
        for which in abba("old", "new", rounds):
            _use_index(rig, which == "old")
            rate, us = copy_ceiling_cpu(rig, seconds)
            rates[which].append(rate)
            cpu[which].append(us)
            print(f"  copy ceiling, {which} time index: {rate:12,.0f} rows/s,"
                  f" backend {us:.2f} us/row", flush=True)
    finally:
        _use_index(rig, False)
    old, new = _median(rates["old"]), _median(rates["new"])
    old_us, new_us = _median(cpu["old"]), _median(cpu["new"])
    return {"copy_ceiling_old_index_rps": round(old), "copy_ceiling_new_index_rps": round(new),
            "copy_ceiling_index_gain": round(new / old - 1, 3),
            "copy_backend_us_per_row_old_index": round(old_us, 3),
            "copy_backend_us_per_row_new_index": round(new_us, 3),
            # rows per backend CPU-second, new over old: the gain the load moves least
            "copy_cpu_index_gain": round(old_us / new_us - 1, 3),
            "copy_ceiling_by_index": rates, "copy_backend_us_by_index": cpu}


def latest_cost(rig: Rig, readings: int, rounds: int = 2) -> dict:
    """The 50-reading drain rate, and the CPU per reading of the worker and of its database
    backends, with readings_latest kept and without, in ABBA order, each on a worker
    started for it."""
    from bench.ingest import drain_rate

    rates: dict[str, list[float]] = {"with": [], "without": []}
    worker: dict[str, list[float]] = {"with": [], "without": []}
    db: dict[str, list[float]] = {"with": [], "without": []}
    for which in abba("with", "without", rounds):
        rig.stop_worker()
        rig.start_worker({"CITYOPS_INGEST_KEEP_LATEST": str(which == "with").lower()})
        db_before = rig.db_cpu_s()
        rate, us = drain_rate(rig, 50, readings)
        db_us = (rig.db_cpu_s() - db_before) * 1e6 / readings
        rates[which].append(rate)
        worker[which].append(us)
        db[which].append(db_us)
        print(f"  50-reading drain {which} readings_latest: {rate:12,.0f} readings/s,"
              f" worker {us:.2f} us/reading, database {db_us:.2f} us/reading", flush=True)
    with_, without = _median(rates["with"]), _median(rates["without"])
    cpu_with = _median(worker["with"]) + _median(db["with"])
    cpu_without = _median(worker["without"]) + _median(db["without"])
    return {"batched_with_latest_rps": round(with_), "batched_without_latest_rps": round(without),
            "latest_cost_drain_rates": round(1 - with_ / without, 3),
            "worker_cpu_us_with_latest": round(_median(worker["with"]), 3),
            "worker_cpu_us_without_latest": round(_median(worker["without"]), 3),
            "db_cpu_us_with_latest": round(_median(db["with"]), 3),
            "db_cpu_us_without_latest": round(_median(db["without"]), 3),
            # worker + database CPU per reading, with over without: the load moves it least
            "latest_cpu_cost": round(cpu_with / cpu_without - 1, 3),
            "latest_cost_runs": rates}


LATEST_MODES = {  # what readings_latest costs live, and what writing it per store cost
    "without": {"CITYOPS_INGEST_KEEP_LATEST": "false"},
    "every_store": {"CITYOPS_INGEST_LATEST_EVERY_MS": "0"},
    "with": {},  # the default: at most every INGEST_LATEST_EVERY_MS
}


def _paced(rig: Rig, rate_rps: float, seconds: float) -> tuple[float, float, float]:
    """Publish 50-reading messages at `rate_rps` for `seconds` (after 2 s of warm-up);
    readings/s committed, and the worker's and its database backends' CPU us per reading."""
    import time
    import uuid

    from bench.ingest_live import live_publisher
    from cityops import wire

    client, templates = live_publisher(rig, str(uuid.uuid4()), 50)
    topic, interval, seq = wire.telemetry_topic(rig.gateway), 50 / rate_rps, 0
    started = time.perf_counter()
    marks: list[tuple[float, float, float, float]] = []
    while (now := time.perf_counter()) - started < seconds + 2:
        while seq < int((now - started) / interval) + 1:
            seq += 1
            client.publish(topic, templates.make(seq, int(time.time() * 1000)), qos=1)
        if not marks and now - started >= 2:
            marks.append((now, rig.stored(), rig.cpu_s(), rig.db_cpu_s()))
        time.sleep(0.002)
    marks.append((time.perf_counter(), rig.stored(), rig.cpu_s(), rig.db_cpu_s()))
    client.loop_stop()
    client.disconnect()
    (t0, n0, w0, d0), (t1, n1, w1, d1) = marks
    readings = max(n1 - n0, 1)
    return readings / (t1 - t0), (w1 - w0) * 1e6 / readings, (d1 - d0) * 1e6 / readings


def latest_live_cost(rig: Rig, rate_rps: float, seconds: float, rounds: int = 2) -> dict:
    """At a steady live rate (as bench-api's load), the worker + database CPU per reading
    without readings_latest, writing it with every store (before 2026-12-03) and at most
    every INGEST_LATEST_EVERY_MS (now); modes in rotating order, medians."""
    names = list(LATEST_MODES)
    order = [m for r in range(rounds) for m in (names if r % 2 == 0 else names[::-1])]
    cpu: dict[str, list[float]] = {m: [] for m in names}
    rates: dict[str, list[float]] = {m: [] for m in names}
    for mode in order:
        rig.stop_worker()
        rig.start_worker(LATEST_MODES[mode])
        rate, worker_us, db_us = _paced(rig, rate_rps, seconds)
        cpu[mode].append(worker_us + db_us)
        rates[mode].append(rate)
        print(f"  live {rate_rps:,.0f}/s, readings_latest {mode:11}: committed {rate:9,.0f}/s,"
              f" worker {worker_us:.2f} + database {db_us:.2f} us/reading", flush=True)
    base = _median(cpu["without"])
    return {"live_cost_rate_rps": rate_rps,
            "live_cpu_us_per_reading": {m: round(_median(v), 3) for m, v in cpu.items()},
            "live_committed_rps": {m: round(_median(v)) for m, v in rates.items()},
            "latest_live_cpu_cost": round(_median(cpu["with"]) / base - 1, 3),
            "latest_live_cpu_cost_every_store": round(_median(cpu["every_store"]) / base - 1,
                                                      3),
            "latest_live_cpu_runs": cpu}
