"""What two choices of the write path cost, measured side by side in one `make bench-ingest`
run (bench/ingest.py):

- the latest-value table (readings_latest, kept by each store's transaction): the 50-reading
  drain rate with it and without it (`CITYOPS_INGEST_KEEP_LATEST=false`), alternately;
- the time index: the COPY ceiling with TimescaleDB's default B-tree on readings (time) (the
  old index) and with the BRIN of migration 091, alternately.
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


def ceiling_by_index(rig: Rig, seconds: float, rounds: int = 2) -> dict:
    """COPY ceiling (rows/s) with the old B-tree and with the BRIN, `rounds` times each,
    alternately; the database keeps the BRIN (migration 091) at the end."""
    from bench.ingest import copy_ceiling

    rates: dict[str, list[float]] = {"old": [], "new": []}
    try:
        for _ in range(rounds):
            for which in ("old", "new"):
                _use_index(rig, which == "old")
                rates[which].append(copy_ceiling(rig, seconds))
                print(f"  copy ceiling, {which} time index: {rates[which][-1]:12,.0f} rows/s",
                      flush=True)
    finally:
        _use_index(rig, False)
    old, new = statistics.median(rates["old"]), statistics.median(rates["new"])
    return {"copy_ceiling_old_index_rps": round(old), "copy_ceiling_new_index_rps": round(new),
            "copy_ceiling_index_gain": round(new / old - 1, 3),
            "copy_ceiling_by_index": rates}


def latest_cost(rig: Rig, readings: int, rounds: int = 2) -> dict:
    """The 50-reading drain rate with the latest-value table kept and without, alternately,
    each on a worker started for it."""
    from bench.ingest import drain_rate

    rates: dict[str, list[float]] = {"with": [], "without": []}
    cpu: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(rounds):
        for which in ("with", "without"):
            rig.stop_worker()
            rig.start_worker({"CITYOPS_INGEST_KEEP_LATEST": str(which == "with").lower()})
            rate, us = drain_rate(rig, 50, readings)
            rates[which].append(rate)
            cpu[which].append(us)
            print(f"  50-reading drain {which} readings_latest: {rate:12,.0f} readings/s,"
                  f" worker {us:.2f} us/reading", flush=True)
    with_, without = statistics.median(rates["with"]), statistics.median(rates["without"])
    return {"batched_with_latest_rps": round(with_), "batched_without_latest_rps": round(without),
            "latest_cost": round(1 - with_ / without, 3),
            "worker_cpu_us_with_latest": round(statistics.median(cpu["with"]), 3),
            "worker_cpu_us_without_latest": round(statistics.median(cpu["without"]), 3),
            "latest_cost_runs": rates}
