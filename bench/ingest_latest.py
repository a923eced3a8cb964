"""What keeping readings_latest costs per store, measured in parts on one connection with the
two kinds of store alternating one by one (so the machine's other work falls on both alike):
a store of `readings` rows (COPY), and the same store with the latest-value upsert of its
newest reading per point (ingestion/latest.py). From those parts, the cost at a rate: one
write every store (before 2026-12-03) against at most one every INGEST_LATEST_EVERY_MS (now).
Part of `make bench-ingest --costs-only` (bench/ingest.py)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import psycopg

from ingestion.decode import DecodedBatch
from ingestion.latest import KEEP_LATEST, LatestKeeper, Newest
from ingestion.sink import numeric_copy_data

if TYPE_CHECKING:
    from bench.ingest import Rig

COPY = "COPY readings (time, point_id, value, quality) FROM STDIN WITH (FORMAT BINARY)"


def _flush(points: int, readings: int, t0: int, n: int) -> list[DecodedBatch]:
    """One flush of 50-reading messages going round the points, as the decoder makes them."""
    rows = [(t0 + n * 20 + i // points, 1 + (n * readings + i) % points, float(i), 0)
            for i in range(readings)]
    return [DecodedBatch("gw", "s", n * 1000 + k, numeric=rows[k:k + 50])
            for k in range(0, readings, 50)]


def store_parts(rig: Rig, flush_readings: int, stores: int, points: int) -> dict:
    """CPU of a store without and with the upsert, alternating store by store: the
    database backend's, and this process's (the worker's share: the newest per point of
    every store and its merge into the pending rows; the literals of a write)."""
    from bench.ingest import process_cpu_s

    t0 = int(time.time() * 1000) - 600_000
    cpu = {"copy": [0.0, 0.0], "latest": [0.0, 0.0]}  # [backend s, python s]
    newest_s = 0.0  # python: the newest per point of each store, merged into pending
    with psycopg.connect(rig.url) as conn:
        backend = conn.info.backend_pid
        keeper = LatestKeeper()
        for n in range(stores * 2):
            mode = "latest" if n % 2 else "copy"
            batches = _flush(points, flush_readings, t0, n)
            py0, db0 = time.process_time(), process_cpu_s(backend)
            data = numeric_copy_data([r for b in batches for r in b.numeric])
            if mode == "latest":
                started = time.process_time()
                own = Newest.of(batches)
                keeper.pending.merge(own)
                newest_s += time.process_time() - started
                rows = keeper.take(Newest())
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy(COPY) as copy:
                    copy.write(data)
                if mode == "latest" and rows is not None:
                    cur.execute(KEEP_LATEST, rows.params())
                    keeper.ended(Newest(), rows, True)
            cpu[mode][0] += process_cpu_s(backend) - db0
            cpu[mode][1] += time.process_time() - py0
        conn.execute("TRUNCATE readings")
        conn.commit()
    per = {m: [s * 1e6 / stores for s in v] for m, v in cpu.items()}  # us per store
    newest_us = newest_s * 1e6 / stores
    return {"flush_readings": flush_readings, "points": points, "stores": stores,
            "store_us": per["copy"], "store_with_latest_us": per["latest"],
            "newest_us": newest_us, "write_db_us": per["latest"][0] - per["copy"][0],
            "write_python_us": per["latest"][1] - per["copy"][1] - newest_us}


def cost_at(parts: dict, rate_rps: float, writes_per_s: float,
            base_us_per_reading: float | None = None) -> float:
    """The CPU the latest values add at `rate_rps` readings/s with `writes_per_s` upserts of
    `points` rows each, as a share of what ingesting costs without them: the worker's and the
    database's CPU per reading measured in the drain (`base_us_per_reading`), or, without
    it, the stores' alone (database + packing; an upper bound: no decoding, no MQTT)."""
    stores_per_s = rate_rps / parts["flush_readings"]
    base = (rate_rps * base_us_per_reading if base_us_per_reading
            else stores_per_s * sum(parts["store_us"]))
    extra = (stores_per_s * parts["newest_us"] + min(writes_per_s, stores_per_s)
             * (parts["write_db_us"] + parts["write_python_us"]))
    return extra / base


def latest_parts_cost(rig: Rig, base_us_per_reading: float | None = None,
                      stores: int = 100) -> dict:
    """The parts at two flush sizes, and the cost at 100 000 readings/s live (20-ms flushes
    of 2000 readings) and in a drain (20 000-reading flushes at 200 000/s), per store and at
    most every 250 ms, against `base_us_per_reading` (see cost_at)."""
    out: dict = {"latest_cost_base_us_per_reading": base_us_per_reading}
    for name, flush, rate in (("live", 2000, 100_000), ("drain", 20_000, 200_000)):
        parts = store_parts(rig, flush, stores, 1000)
        every_store = cost_at(parts, rate, rate / flush, base_us_per_reading)
        every_250 = cost_at(parts, rate, 4, base_us_per_reading)
        out[f"latest_{name}_parts"] = {k: (round(v, 1) if isinstance(v, float) else v)
                                       for k, v in parts.items()}
        out[f"latest_{name}_cost_every_store"] = round(every_store, 3)
        out[f"latest_{name}_cost"] = round(every_250, 3)
        print(f"  {name}: {flush}-reading stores at {rate:,}/s: upsert of 1000 points"
              f" {parts['write_db_us']:,.0f} us database + {parts['write_python_us']:,.0f} us"
              f" worker, newest per point {parts['newest_us']:,.0f} us a store; a store"
              f" {sum(parts['store_us']):,.0f} us; cost every store"
              f" {every_store:.1%}, every 250 ms {every_250:.1%}", flush=True)
    return out
