"""`make bench-api`: API latency at a fixed request rate over a large readings table.

On a database of its own in the local cluster (kept between runs as `cityops_bench_api`, so
the 10 million rows are generated once), with 1,000 devices of 4 points each and a reading
every 30 s for each point over the last 24 hours (11.5 million rows, rolled up as ingestion
does), an API process is started on a free loopback port and driven open-loop (requests
start on schedule whether or not earlier ones finished, so queueing shows in the latency) at
--rate requests/s for --duration s per scenario:

- latest:   GET /v1/devices/{one of 1,000}/latest, cycling over the 1,000 devices
- buckets:  GET /v1/devices/{one of 1,000}/readings?point=...&bucket=1m (24 h: 1,440 buckets)
- page:     GET /v1/readings/latest?department=... (all 1,000 devices, 4,000 points, in one
            answer) at --page-rate (a wall screen's refresh, not 100/s: one answer is 4,000
            index probes, ~60-120 ms of database time on this machine)

Prints p50/p99 latency and achieved requests/s per scenario; writes bench/results/api.json
with latest_p99_ms, buckets_p99_ms, rows, rate_rps (and the rest).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

from api.auth import issue_token
from cityops.principal import Principal, Role
from cityops.settings import load_settings
from infra.db.migrate import migrate

REPO = Path(__file__).parents[1]
RESULTS = REPO / "bench" / "results" / "api.json"
DATABASE = "cityops_bench_api"
DEVICES, POINTS, STEP_S, HOURS = 1000, 4, 30, 24
DEPARTMENT = "bench-dept"
PROFILE = {"model": "bench-meter", "category": "power", "protocol": "modbus", "points": [
    {"name": f"p{i}", "data_type": "float32", "unit": "V",
     "address": {"table": "input_register", "offset": 2 * i}} for i in range(POINTS)]}


def database_url(base: str) -> str:
    return f"{base.rpartition('/')[0]}/{DATABASE}"


def prepare(admin_url: str, url: str) -> tuple[int, datetime]:
    """The bench database with its rows, generated only when missing: the row count and the
    end of the data (the window queried is the data's last 24 h, however old the data is)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() \
                is None:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    migrate(url)
    if _extent(url)[0] < DEVICES * POINTS * (HOURS * 3600 // STEP_S):
        print("generating the bench data once (a few minutes on a loaded machine)...",
              flush=True)
        _generate(url)
    return _extent(url)


def _extent(url: str) -> tuple[int, datetime]:
    with psycopg.connect(url) as conn:
        rows, last = conn.execute(
            "SELECT count(*), date_trunc('minute', max(time)) + interval '1 minute'"
            " FROM readings").fetchone()
    return rows, last or datetime.now(UTC)


def _generate(url: str) -> None:
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    start = end - timedelta(hours=HOURS)
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE readings, rollup_1m, rollup_1h, rollup_dirty")
        conn.execute("INSERT INTO departments (id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                     (DEPARTMENT, DEPARTMENT))
        conn.execute("INSERT INTO gateways (id) VALUES ('gw-bench') ON CONFLICT DO NOTHING")
        conn.execute("INSERT INTO profiles (id, protocol, category, body) VALUES"
                     " ('bench-meter', 'modbus', 'power', %s) ON CONFLICT DO NOTHING",
                     (json.dumps(PROFILE),))
        conn.execute(
            "INSERT INTO devices (id, gateway_id, profile_id, department_id)"
            " SELECT 'bench-' || lpad(n::text, 4, '0'), 'gw-bench', 'bench-meter', %s"
            " FROM generate_series(1, %s) n ON CONFLICT DO NOTHING", (DEPARTMENT, DEVICES))
        conn.execute(
            "INSERT INTO points (device_id, name, unit, data_type)"
            " SELECT d.id, 'p' || i, 'V', 'float32' FROM devices d, generate_series(0, %s) i"
            " WHERE d.gateway_id = 'gw-bench' ON CONFLICT DO NOTHING", (POINTS - 1,))
        conn.commit()
        # one statement per hour keeps each transaction (and its WAL) small
        hour = start
        while hour < end:
            conn.execute(
                "INSERT INTO readings (time, point_id, value)"
                " SELECT t, p.id, 230 + 5 * sin(extract(epoch FROM t) / 600 + p.id)"
                " FROM points p, generate_series(%s::timestamptz, %s::timestamptz - interval"
                " '1 microsecond', make_interval(secs => %s)) t"
                " WHERE p.device_id LIKE 'bench-%%'", (hour, hour + timedelta(hours=1), STEP_S))
            conn.commit()
            hour += timedelta(hours=1)
        conn.execute("INSERT INTO rollup_dirty SELECT generate_series(%s::timestamptz, %s,"
                     " interval '1 minute')", (start, end - timedelta(minutes=1)))
        conn.commit()
    asyncio.run(_rollups(url))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE readings")
        conn.execute("VACUUM ANALYZE rollup_1m")


async def _rollups(url: str) -> None:
    from ingestion import rollups

    async with await psycopg.AsyncConnection.connect(url) as conn:
        await rollups.refresh(conn)


def bench_user(url: str) -> int:
    """The viewer the bench calls as: the API reads the user on every request (its auth
    version goes into the token)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "INSERT INTO users (username, password_hash, role) VALUES ('bench', '!bench',"
            " 'viewer') ON CONFLICT (username) DO UPDATE SET disabled = false"
            " RETURNING auth_version").fetchone()[0]  # type: ignore[index]


def start_api(url: str, secret: str, workers: int) -> tuple[subprocess.Popen, int]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYOPS_")}
    settings = load_settings()
    env |= {"CITYOPS_DATABASE_URL": url, "CITYOPS_JWT_SECRET": secret,
            "CITYOPS_MQTT_URL": settings.mqtt_url, "CITYOPS_LOG_LEVEL": "WARNING",
            "CITYOPS_API_MQTT_PASSWORD": settings.api_mqtt_password.get_secret_value(),
            "CITYOPS_ENV_FILE": "/nonexistent", "CITYOPS_API_WORKERS": str(workers)}
    proc = subprocess.Popen([sys.executable, "-m", "cityops", "api", "--port", str(port)],
                            cwd=REPO, env=env, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1)
            return proc, port
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the API did not start")


async def drive(base: str, headers: dict, paths: list[str], rate: float, duration_s: float
                ) -> dict:
    """Open loop: request i starts at t0 + i / rate; latency counts from that moment."""
    total = int(rate * duration_s)
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits,
                                 timeout=30) as client:
        await client.get(paths[0])  # warm the connection and the caches once
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.1

        async def one(i: int) -> None:
            nonlocal errors
            at = t0 + i / rate
            await asyncio.sleep(max(0.0, at - loop.time()))
            try:
                res = await client.get(paths[i % len(paths)])
            except httpx.HTTPError:
                errors += 1  # e.g. a keep-alive connection the server had just closed
                return
            if res.status_code != 200:
                errors += 1
            latencies.append((loop.time() - at) * 1000)

        await asyncio.gather(*(one(i) for i in range(total)))
        elapsed = loop.time() - t0
    # a failed request counts as the slowest: p99 must not improve by failing
    latencies = sorted(latencies) + [float("inf")] * (total - len(latencies))
    return {"requests": total, "errors": errors, "achieved_rps": round(total / elapsed, 1),
            "p50_ms": round(statistics.median(latencies), 2),
            "p99_ms": round(latencies[min(total - 1, int(total * 0.99))], 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100.0, help="requests/s")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per scenario")
    parser.add_argument("--page-rate", type=float, default=2.0,
                        help="requests/s for the 1,000-device page")
    parser.add_argument("--workers", type=int, default=1,
                        help="API processes (CITYOPS_API_WORKERS)")
    parser.add_argument("--only", choices=["latest", "buckets", "page"], action="append",
                        help="run only this scenario (repeatable); default all three")
    args = parser.parse_args()
    settings = load_settings()
    url = database_url(settings.database_url.get_secret_value())
    rows, end = prepare(settings.database_admin_url.get_secret_value(), url)
    secret = secrets.token_urlsafe(48)
    proc, port = start_api(url, secret, args.workers)
    token = issue_token(Principal("bench", Role.VIEWER, version=bench_user(url)), secret, 3600)
    headers = {"Authorization": f"Bearer {token}"}
    window = f"start={(end - timedelta(hours=24)).isoformat()}&end={end.isoformat()}"
    window = window.replace("+00:00", "Z")
    devices = [f"bench-{n:04d}" for n in range(1, DEVICES + 1)]
    random.Random(7).shuffle(devices)
    scenarios = {
        "latest": ([f"/v1/devices/{d}/latest" for d in devices], args.rate),
        "buckets": ([f"/v1/devices/{d}/readings?point=p1&bucket=1m&{window}" for d in devices],
                    args.rate),
        "page": ([f"/v1/readings/latest?department={DEPARTMENT}"], args.page_rate),
    }
    results: dict = {"rows": rows, "rate_rps": args.rate, "duration_s": args.duration,
                     "api_workers": args.workers,
                     "devices": DEVICES, "points": DEVICES * POINTS}
    try:
        for name, (paths, rate) in scenarios.items():
            if args.only and name not in args.only:
                continue
            figures = asyncio.run(drive(f"http://127.0.0.1:{port}", headers, paths, rate,
                                        args.duration))
            results[name] = figures
            print(f"{name:8} p50 {figures['p50_ms']:8.2f} ms  p99 {figures['p99_ms']:8.2f} ms"
                  f"  {figures['achieved_rps']:6.1f} req/s  errors {figures['errors']}"
                  f"  (p99 / 50 ms target = {figures['p99_ms'] / 50:.2f})", flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
    for name, key in (("latest", "latest_p99_ms"), ("buckets", "buckets_p99_ms"),
                      ("page", "page_latest_p99_ms")):
        if name in results:
            results[key] = results[name]["p99_ms"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"rows {rows:,}; written {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
