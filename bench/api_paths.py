"""The two paths `make bench-api` drives each scenario through (bench/api.py): the API over
HTTP, and the same SQL the route issues, sent directly with psycopg (the limit: what the
database answers with no HTTP, auth, validation or encoding), at the same rate or flat out."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from psycopg_pool import AsyncConnectionPool

from api.queries import readings as q
from bench.api_client import LeanClient
from ingestion import rollups

# latencies by perf_counter, not the loop's clock: uvloop's (libuv's uv_now) counts whole
# milliseconds, so every p50 and p99 came out a whole number
_now = time.perf_counter

Call = Callable[[int], Awaitable[bool]]  # request i; True when it succeeded
# a request not answered by then failed (counted as the slowest): an overloaded path ends its
# run soon after its schedule instead of draining a queue of minutes
TIMEOUT_S = 10.0


def figures(latencies: list[float], total: int, errors: int, elapsed: float) -> dict:
    # a failed request counts as the slowest: p99 must not improve by failing
    latencies = sorted(latencies) + [float("inf")] * (total - len(latencies))
    return {"requests": total, "errors": errors, "achieved_rps": round(total / elapsed, 1),
            "p50_ms": round(statistics.median(latencies), 2),
            "p99_ms": round(latencies[min(total - 1, int(total * 0.99))], 2),
            "elapsed_s": round(elapsed, 3)}


def merged(rounds: list[dict]) -> dict:
    """One path's flat-out rounds (bench/api.py alternates them with the other path's) as one
    run: its requests over the rounds' summed time, the p50 and p99 of all their latencies,
    CPU per request and the ingest rate weighted by requests and by time."""
    total = sum(r["requests"] for r in rounds)
    elapsed = sum(r["elapsed_s"] for r in rounds)
    out = figures([ms for r in rounds for ms in r.pop("latencies_ms")], total,
                  sum(r["errors"] for r in rounds), elapsed)
    for key in ("client_cpu_ms", "api_cpu_ms"):
        out[key] = round(sum(r[key] * r["requests"] for r in rounds) / max(total, 1), 3)
    if "ingest_rps" in rounds[0]:
        out["ingest_rps"] = round(sum(r["ingest_rps"] * r["elapsed_s"] for r in rounds)
                                  / max(elapsed, 1e-6))
    out["rounds_rps"] = [r["achieved_rps"] for r in rounds]
    return out


async def open_loop(call: Call, rate: float, duration_s: float) -> dict:
    """Request i starts at t0 + i / rate whether or not earlier ones finished (so queueing
    shows in the latency); latency counts from that moment."""
    total = int(rate * duration_s)
    latencies: list[float] = []
    errors = 0
    # warm the connections once, a few at a time: with keep-alive each sticks to one API
    # process, and one call alone warmed one process (the other's first answer then waited
    # for its own computation: the shared latest-of-many answer, api/shared_answers.py)
    await asyncio.gather(*(call(0) for _ in range(4)))
    t0 = _now() + 0.1

    async def one(i: int) -> None:
        nonlocal errors
        at = t0 + i / rate
        await asyncio.sleep(max(0.0, at - _now()))
        if not await call(i):
            errors += 1
            return
        latencies.append((_now() - at) * 1000)

    await asyncio.gather(*(one(i) for i in range(total)))
    return figures(latencies, total, errors, _now() - t0)


async def warm(call: Call, calls: int, concurrency: int) -> None:
    """`calls` requests, i = 0..calls-1, `concurrency` at a time, nothing measured."""
    queue = iter(range(calls))

    async def caller() -> None:
        for i in queue:
            await call(i)

    await asyncio.gather(*(caller() for _ in range(concurrency)))


async def flat_out(call: Call, concurrency: int, duration_s: float) -> dict:
    """Closed loop: `concurrency` callers back to back for `duration_s`: the most requests/s
    the path answers, with the p99 it answers them at (one round: see merged())."""
    latencies: list[float] = []
    errors, started = 0, 0
    t0 = _now()

    async def caller() -> None:
        nonlocal errors, started
        while _now() - t0 < duration_s:
            started += 1
            at = _now()
            if await call(started):
                latencies.append((_now() - at) * 1000)
            else:
                errors += 1

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    # the latencies themselves, for merged(): popped there, never written to the results
    return figures(latencies, started, errors, _now() - t0) | {"latencies_ms": latencies}


def api_call(client: LeanClient, paths: list[str]) -> Call:
    async def call(i: int) -> bool:
        try:
            async with asyncio.timeout(TIMEOUT_S):
                return await client.get(paths[i % len(paths)]) == 200
        except (OSError, TimeoutError):  # ConnectionError is an OSError
            return False  # e.g. a keep-alive connection the server had just closed
    return call


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and all its descendants alive now (the API's
    uvicorn supervisor and its worker processes), from /proc."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    tree, todo = set(), [pid]
    while todo:
        current = todo.pop()
        tree.add(current)
        todo.extend(child for child, parent in parents.items() if parent == current)
    return sum(times.get(p, 0.0) for p in tree)


def direct_call(pool: AsyncConnectionPool, scenario: str, devices: list[str], department: str,
                window: tuple[datetime, datetime]) -> Call:
    """The route's SQL for request i, as api/queries issues it (the department check
    included), rows fetched and dropped; buckets computed from the rollup every time (the
    route's cache of closed periods is the API's own gain). `pool` in autocommit, as the
    routes' connections (api/read_pool.py)."""
    async def one(conn, i: int) -> None:
        async for _ in q.devices_latest(conn, [devices[i % len(devices)]]):
            pass

    async def buckets(conn, i: int) -> None:
        _, point_id, _ = await q.department_and_point(conn, devices[i % len(devices)], "p1")
        assert point_id is not None
        await rollups.bucketed(conn, point_id, 60, *window)

    async def latest(conn, i: int) -> None:  # of all 1,000 devices, as the route's JSON
        await q.latest_page_json(conn, {"d.department_id": department}, None, 1000)

    work = {"one": one, "latest": latest, "buckets": buckets}[scenario]

    async def call(i: int) -> bool:
        try:
            async with pool.connection(timeout=TIMEOUT_S) as conn:
                await work(conn, i)
        except Exception:  # a failure counts as the slowest request, as over HTTP
            return False
        return True
    return call
