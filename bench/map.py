"""`make bench-map`: vector tiles of large map layers through the API, against the same
ST_AsMVT query run directly with psycopg in the same run (the limit).

On a database of its own in the local cluster (kept as `cityops_bench_map`, generated once):
100,000 devices spread over 濉溪县's extent and 10,000 grid cells (100 x 100) over it. For zooms
8 to 16, --per-zoom tiles over the county are drawn at random (seeded) for each of the two
layers (`devices`, `areas-grid`). Then:

- open loop through the API at --rate requests/s for --duration s: p50/p99 per tile, overall
  and per zoom (requests start on schedule, so queueing shows in the latency);
- closed loop with --concurrency clients for --duration s, once through the API and once
  straight to PostgreSQL with each tile's ST_AsMVT statement (spatial/tiles.py; the stored
  low-zoom device tiles cut anew from their cells): tiles/s each, and their ratio (API /
  direct); then the API's own statements directly (`ratio_to_read`: stored tiles read).

Writes bench/results/map.json (tile_p50_ms, tile_p99_ms, ratio, and the rest).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import random
import secrets
import statistics
import time
from pathlib import Path

import httpx
import psycopg

from api.auth import issue_token
from bench.api import bench_user, start_api
from cityops.principal import Principal, Role
from cityops.settings import load_settings
from infra.db.admin import database_beside, ensure_migrated
from spatial.tiles import tile_params, tile_query

REPO = Path(__file__).parents[1]
RESULTS = REPO / "bench" / "results" / "map.json"
DATABASE = "cityops_bench_map"
POINTS, CELLS_SIDE = 100_000, 100
WEST, SOUTH, EAST, NORTH = 116.50, 33.40, 117.05, 34.10
LAYERS = ("devices", "areas-grid")


def prepare(admin_url: str, url: str) -> None:
    ensure_migrated(admin_url, url)
    with psycopg.connect(url) as conn:
        have = conn.execute("SELECT count(*) FROM devices").fetchone()[0]
        if have >= POINTS:
            return
        print("generating the bench layers once...", flush=True)
        conn.execute("INSERT INTO gateways (id) VALUES ('gw-map') ON CONFLICT DO NOTHING")
        conn.execute("INSERT INTO profiles (id, protocol, category, body) VALUES"
                     " ('bench-cam', 'modbus', 'security', '{}') ON CONFLICT DO NOTHING")
        conn.execute(
            "INSERT INTO devices (id, gateway_id, profile_id, longitude, latitude)"
            " SELECT 'map-' || n, 'gw-map', 'bench-cam', %s + random() * %s, %s + random() * %s"
            " FROM generate_series(1, %s) n ON CONFLICT DO NOTHING",
            (WEST, EAST - WEST, SOUTH, NORTH - SOUTH, POINTS))
        dx, dy = (EAST - WEST) / CELLS_SIDE, (NORTH - SOUTH) / CELLS_SIDE
        conn.execute(
            "INSERT INTO areas (kind, code, geom) SELECT 'grid', 'b' || i || '-' || j,"
            " ST_Multi(ST_MakeEnvelope(%s + i * %s, %s + j * %s, %s + (i + 1) * %s,"
            " %s + (j + 1) * %s, 4490)) FROM generate_series(0, %s) i, generate_series(0, %s) j"
            " ON CONFLICT DO NOTHING",
            (WEST, dx, SOUTH, dy, WEST, dx, SOUTH, dy, CELLS_SIDE - 1, CELLS_SIDE - 1))
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE devices")
        conn.execute("VACUUM ANALYZE areas")


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


def tiles(per_zoom: int, zooms: range) -> list[tuple[str, int, int, int]]:
    rng = random.Random(16)
    chosen = []
    for z in zooms:
        x0, y0 = tile_xy(WEST, NORTH, z)
        x1, y1 = tile_xy(EAST, SOUTH, z)
        every = [(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
        for layer in LAYERS:
            for x, y in (rng.sample(every, per_zoom) if len(every) > per_zoom else every):
                chosen.append((layer, z, x, y))
    rng.shuffle(chosen)
    return chosen


async def drive(base: str, headers: dict, paths: list[str], rate: float, duration_s: float
                ) -> dict:
    """Open loop: request i starts at t0 + i / rate and its latency counts from then, so
    queueing shows; a failed request counts as the slowest."""
    total, latencies, errors = int(rate * duration_s), [], 0
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits,
                                 timeout=30) as client:
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.1

        async def one(i: int) -> None:
            nonlocal errors
            at = t0 + i / rate
            await asyncio.sleep(max(0.0, at - loop.time()))
            try:
                res = await client.get(paths[i % len(paths)])
                res.raise_for_status()
            except httpx.HTTPError:
                errors += 1
                return
            latencies.append((loop.time() - at) * 1000)

        await asyncio.gather(*(one(i) for i in range(total)))
        elapsed = loop.time() - t0
    latencies = sorted(latencies) + [math.inf] * (total - len(latencies))
    return {"requests": total, "errors": errors, "achieved_rps": round(total / elapsed, 1),
            "p50_ms": round(latencies[total // 2], 2),
            "p99_ms": round(latencies[min(total - 1, int(total * 0.99))], 2)}


async def closed_loop_api(base: str, headers: dict, paths: list[str], clients: int,
                          duration_s: float) -> float:
    done = 0
    stop = time.monotonic() + duration_s
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        async def worker(k: int) -> None:
            nonlocal done
            i = k
            while time.monotonic() < stop:
                (await client.get(paths[i % len(paths)])).raise_for_status()
                done += 1
                i += clients
        await asyncio.gather(*(worker(k) for k in range(clients)))
    return done / duration_s


async def closed_loop_direct(url: str, chosen: list, clients: int, duration_s: float,
                             cut: bool = True) -> tuple[float, list[float]]:
    """The tile's ST_AsMVT statement (`cut`: a stored tile cut anew, the issue's limit;
    else the API's own statement, a stored tile read), each client on its own connection:
    tiles/s and latencies."""
    done, latencies = 0, []
    stop = time.monotonic() + duration_s

    async def worker(k: int) -> None:
        nonlocal done
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            i = k
            while time.monotonic() < stop:
                layer, z, x, y = chosen[i % len(chosen)]
                started = time.perf_counter()
                cur = await conn.execute(tile_query(layer, z, False, cut=cut),
                                         tile_params(layer, z, x, y, None))
                await cur.fetchone()
                latencies.append((time.perf_counter() - started) * 1000)
                done += 1
                i += clients
    await asyncio.gather(*(worker(k) for k in range(clients)))
    return done / duration_s, latencies


def _per_zoom(chosen: list, base: str, headers: dict) -> dict:
    """One sequential request per sampled tile, grouped by zoom (ms), and tile sizes."""
    out: dict = {}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for layer, z, x, y in chosen:
            started = time.perf_counter()
            res = client.get(f"/v1/map/tiles/{layer}/{z}/{x}/{y}.mvt")
            ms = (time.perf_counter() - started) * 1000
            out.setdefault(f"{layer} z{z}", []).append((ms, len(res.content)))
    return {k: {"p50_ms": round(statistics.median(m for m, _ in v), 2),
                "max_ms": round(max(m for m, _ in v), 2),
                "max_bytes": max(b for _, b in v)} for k, v in sorted(out.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=100.0, help="requests/s (open loop)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase")
    parser.add_argument("--per-zoom", type=int, default=20, help="tiles per zoom and layer")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="API processes (one per core)")
    parser.add_argument("--no-cache", action="store_true",
                        help="send Cache-Control: no-cache: every tile cut anew (the API's "
                        "cost without its tile cache, spatial/tile_cache.py)")
    args = parser.parse_args()
    settings = load_settings()
    url = database_beside(settings.database_url.get_secret_value(), DATABASE)
    prepare(settings.database_admin_url.get_secret_value(), url)
    chosen = tiles(args.per_zoom, range(8, 17))
    paths = [f"/v1/map/tiles/{layer}/{z}/{x}/{y}.mvt" for layer, z, x, y in chosen]
    secret = secrets.token_urlsafe(48)
    proc, port = start_api(url, secret, args.workers)
    base = f"http://127.0.0.1:{port}"
    token = issue_token(Principal("bench", Role.VIEWER, version=bench_user(url)), secret, 3600)
    headers = {"Authorization": f"Bearer {token}"}
    gc.collect()  # the bench's own full collections out of the timed answers (bench/api.py)
    gc.freeze()
    if args.no_cache:
        headers["Cache-Control"] = "no-cache"
    try:
        # every pooled connection's first ST_Transform loads PROJ (70 ms to 1 s): warm them,
        # and let the low-zoom device cells be computed, before measuring
        asyncio.run(closed_loop_api(base, headers, paths, 8, 5.0))
        asyncio.run(closed_loop_direct(url, chosen, args.concurrency, 3.0))
        per_zoom = _per_zoom(chosen, base, headers)
        open_loop = asyncio.run(drive(base, headers, paths, args.rate, args.duration))
        api_tps = asyncio.run(closed_loop_api(base, headers, paths, args.concurrency,
                                              args.duration))
    finally:
        proc.terminate()
        proc.wait(10)
    direct_tps, direct_ms = asyncio.run(closed_loop_direct(url, chosen, args.concurrency,
                                                           args.duration))
    read_tps, _ = asyncio.run(closed_loop_direct(url, chosen, args.concurrency,
                                                 args.duration, cut=False))
    direct_ms.sort()
    results = {
        "points": POINTS, "grid_cells": CELLS_SIDE ** 2, "zooms": "8-16",
        "tiles_sampled": len(chosen), "rate_rps": args.rate, "duration_s": args.duration,
        "tile_cache": not args.no_cache, "load_average": [round(v, 2) for v in os.getloadavg()],
        "tile_p50_ms": open_loop["p50_ms"], "tile_p99_ms": open_loop["p99_ms"],
        "open_loop": open_loop, "concurrency": args.concurrency, "api_workers": args.workers,
        "api_tiles_per_s": round(api_tps, 1), "direct_tiles_per_s": round(direct_tps, 1),
        "ratio": round(api_tps / direct_tps, 3) if direct_tps else None,
        # the API's own statements run directly: stored low-zoom device tiles are one read,
        # so this limit is the framework's overhead alone (not the issue's ratio)
        "direct_read_tiles_per_s": round(read_tps, 1),
        "ratio_to_read": round(api_tps / read_tps, 3) if read_tps else None,
        "direct_p50_ms": round(statistics.median(direct_ms), 2),
        "direct_p99_ms": round(direct_ms[int(len(direct_ms) * 0.99)], 2),
        "per_zoom": per_zoom,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "per_zoom"}, indent=2))
    for name, figures in per_zoom.items():
        print(f"{name:18} p50 {figures['p50_ms']:8.2f} ms  max {figures['max_ms']:8.2f} ms"
              f"  largest {figures['max_bytes']:,} B")
    print(f"written {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
