"""`make bench-api`: API latency and throughput against the limit, idle and under ingest.

On a database of its own in the local cluster (kept between runs as `cityops_bench_api`, so
the 11.5 million rows are generated once), with 1,000 devices of 4 points each and a reading
every 30 s for each point over 24 hours (rolled up as ingestion does), an API process (or
--workers of them) is started on a free loopback port. Scenarios:

- latest:   GET /v1/readings/latest?department=... (latest of all 1,000 devices, 4,000 points)
- one:      GET /v1/devices/{one of 1,000}/latest, cycling over the 1,000 devices
- buckets:  GET /v1/devices/{one of 1,000}/readings?point=p1&bucket=1m (24 h: 1,440 buckets)

Each scenario runs through two paths in the same run (bench/api_paths.py): the API, and the
same SQL the route issues sent directly with psycopg (the limit); each path open-loop at
--rate requests/s (p50/p99) and flat out with --concurrency callers (the most requests/s;
the ratio API / direct), in --flat-rounds rounds alternated with the other path's. All of
it twice: idle, and while bench-ingest's rig ingests a steady --ingest-rps readings/s into a
database of its own on the same server (bench/api_load.py). Writes bench/results/api.json:
latest_p99_ms, buckets_p99_ms, latest_ratio, buckets_ratio (under ingest), under_ingest_rps,
and every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import uvloop
from psycopg_pool import AsyncConnectionPool

from api.auth import issue_token
from bench.api_client import LeanClient
from bench.api_load import IngestLoad
from bench.api_paths import api_call, direct_call, flat_out, merged, open_loop, tree_cpu_s, warm
from bench.api_report import print_row, summarise
from cityops.principal import Principal, Role
from cityops.settings import load_settings
from infra.db.admin import database_beside, ensure_migrated

REPO = Path(__file__).parents[1]
RESULTS = REPO / "bench" / "results" / "api.json"
DATABASE = "cityops_bench_api"
DEVICES, POINTS, STEP_S, HOURS = 1000, 4, 30, 24
DEPARTMENT = "bench-dept"
PROFILE = {"model": "bench-meter", "category": "power", "protocol": "modbus", "points": [
    {"name": f"p{i}", "data_type": "float32", "unit": "V",
     "address": {"table": "input_register", "offset": 2 * i}} for i in range(POINTS)]}


def prepare(admin_url: str, url: str) -> tuple[int, datetime]:
    """The bench database with its rows, generated only when missing: the row count and the
    end of the data (the window queried is the data's last 24 h, however old the data is)."""
    ensure_migrated(admin_url, url)
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
        conn.execute("SELECT readings_latest_refresh()")  # ingestion keeps it; not here
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


def start_api(url: str, secret: str, workers: int | None) -> tuple[subprocess.Popen, int]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYOPS_")}
    settings = load_settings()
    env |= {"CITYOPS_DATABASE_URL": url, "CITYOPS_JWT_SECRET": secret,
            "CITYOPS_MQTT_URL": settings.mqtt_url, "CITYOPS_LOG_LEVEL": "WARNING",
            "CITYOPS_API_MQTT_PASSWORD": settings.api_mqtt_password.get_secret_value(),
            "CITYOPS_ENV_FILE": "/nonexistent"}
    for name in ("mqtt_ca_file", "api_mqtt_cert_file", "api_mqtt_key_file", "mqtt_cert_file",
                 "mqtt_key_file"):  # the stack's services reach the broker over TLS
        if getattr(settings, name) is not None:
            env[f"CITYOPS_{name.upper()}"] = str(getattr(settings, name))
    if workers:
        env["CITYOPS_API_WORKERS"] = str(workers)
    proc = subprocess.Popen([sys.executable, "-m", "cli", "api", "--port", str(port)],
                            cwd=REPO, env=env, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 180  # a loaded machine starts several processes slowly
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1)
            return proc, port
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the API did not start")


async def run_scenarios(args: argparse.Namespace, port: int, headers: dict, url: str,
                        end: datetime, api_pid: int, load: IngestLoad | None = None) -> dict:
    """Every scenario through both paths, open loop at its rate and flat out."""
    start = end - timedelta(hours=24)
    window = f"start={start.isoformat()}&end={end.isoformat()}".replace("+00:00", "Z")
    devices = [f"bench-{n:04d}" for n in range(1, DEVICES + 1)]
    random.Random(7).shuffle(devices)
    paths = {
        "latest": [f"/v1/readings/latest?department={DEPARTMENT}"],
        "one": [f"/v1/devices/{d}/latest" for d in devices],
        "buckets": [f"/v1/devices/{d}/readings?point=p1&bucket=1m&{window}" for d in devices],
    }
    out: dict = {}
    client = LeanClient("127.0.0.1", port, headers)
    async with AsyncConnectionPool(url, min_size=args.concurrency, max_size=10, open=False,
                                   kwargs={"autocommit": True}) as pool:
        await pool.open(wait=True)
        for name in args.only or list(paths):
            calls = {"api": api_call(client, paths[name]),
                     "direct": direct_call(pool, name, devices, DEPARTMENT, (start, end))}
            row: dict = {}
            # a day's closed hours are cached per API process (api/bucket_cache.py) and this
            # path set asks each device's day once per pass: the first visits are measured
            # apart, then every process is given each day before the figures a dashboard's
            # steady state is judged by. The warming asks on a new connection each time
            # (Connection: close): a kept one sticks to one process, and a day warmed in one
            # was still cold in the other (with 2 processes, each pass misses a given
            # process with odds 1/2: 8 passes leave 0.4 % of the days cold there)
            if name == "buckets" and args.warm_passes and not getattr(args, "warmed", False):
                row["api_cold"] = await _measured(
                    open_loop(calls["api"], args.rate, args.duration), api_pid, load)
                warmer = LeanClient("127.0.0.1", port, headers | {"Connection": "close"})
                await warm(api_call(warmer, paths[name]), len(paths[name]) * args.warm_passes,
                           args.concurrency)
                await warmer.aclose()
                args.warmed = True
            for path, call in calls.items():
                if load is not None:  # the open loop under the load it names, no more
                    row[path + "_drain_s"] = round(load.drained(), 1)
                row[path] = await _measured(open_loop(call, args.rate, args.duration), api_pid,
                                            load)
            row |= await _flat_rounds(args, calls, api_pid, load)
            row["ratio"] = round(row["api_flat"]["achieved_rps"]
                                 / max(row["direct_flat"]["achieved_rps"], 1e-9), 3)
            out[name] = row
            print_row(name, args.rate, row)
    await client.aclose()
    return out


async def _flat_rounds(args: argparse.Namespace, calls: dict, api_pid: int,
                       load: IngestLoad | None) -> dict:
    """Both paths flat out in alternating rounds (API, direct, direct, API, ...), `--flat-s`
    each in all: one window per path put whatever the shared machine did during one of them
    into the ratio (the same code measured 0.68 and 2.40 in two runs of 3 s windows)."""
    rounds: dict[str, list[dict]] = {path: [] for path in calls}
    for n in range(args.flat_rounds):
        for path in list(calls) if n % 2 == 0 else list(calls)[::-1]:
            rounds[path].append(await _measured(
                flat_out(calls[path], args.concurrency, args.flat_s / args.flat_rounds),
                api_pid, load))
    return {path + "_flat": merged(parts) for path, parts in rounds.items()}


async def _measured(run, api_pid: int, load: IngestLoad | None = None) -> dict:
    """The run's figures with the CPU it cost per request: the bench's own event loop (the
    client: it must stay far below the API's) and the API's processes (idle but for it);
    under ingest, the readings/s committed meanwhile (the open loop's 100 requests/s leave
    ingestion its rate; flat out, the API takes the cores it wants: ingestion runs below)."""
    client0, api0 = time.thread_time(), tree_cpu_s(api_pid)
    stored0, at0 = (load.rig.stored(), time.monotonic()) if load and load.rig else (0.0, 0.0)
    figures = await run
    if load is not None and load.rig is not None:
        figures["ingest_rps"] = round((load.rig.stored() - stored0)
                                      / max(time.monotonic() - at0, 1e-6))
    requests = max(figures["requests"], 1)
    figures["client_cpu_ms"] = round((time.thread_time() - client0) * 1000 / requests, 3)
    figures["api_cpu_ms"] = round((tree_cpu_s(api_pid) - api0) * 1000 / requests, 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="requests/s, open loop")
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds per scenario and path, open loop")
    parser.add_argument("--concurrency", type=int, default=8, help="callers when flat out")
    parser.add_argument("--flat-s", type=float, default=5.0,
                        help="seconds flat out, per path")
    parser.add_argument("--flat-rounds", type=int, default=4,
                        help="flat-out rounds per path, alternated with the other path's")
    parser.add_argument("--ingest-rps", type=float, default=100_000,
                        help="readings/s ingested during the loaded half (0: idle only)")
    parser.add_argument("--ingest-nice", type=int, default=None,
                        help="the ingest load's nice value (the worker and the"
                        " publisher; default CITYOPS_INGEST_NICE, 10; 0: at the API's priority)")
    parser.add_argument("--workers", type=int, default=None,
                        help="API processes (default: the API's own, from the cores)")
    parser.add_argument("--warm-passes", type=int, default=8,
                        help="buckets: passes over every device's day before measuring (the "
                        "first visits are measured apart as api_cold; 0: no warming)")
    parser.add_argument("--only", choices=["latest", "one", "buckets"], action="append",
                        help="run only this scenario (repeatable); default all")
    args = parser.parse_args()
    settings = load_settings()
    url = database_beside(settings.database_url.get_secret_value(), DATABASE)
    rows, end = prepare(settings.database_admin_url.get_secret_value(), url)
    secret = secrets.token_urlsafe(48)
    proc, port = start_api(url, secret, args.workers)
    token = issue_token(Principal("bench", Role.VIEWER, version=bench_user(url)), secret, 3600)
    # as browsers and the console ask (an answer the API keeps gzipped is sent so: the
    # latest of 1,000 devices, ~60 KB instead of 0.5 MB); the time is to the last byte
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}
    # the bench's own full garbage collections walked ~190,000 objects (FastAPI, pydantic,
    # imported for the token): 50-150 ms in which no answer was timed; out of the walks
    gc.collect()
    gc.freeze()
    # the client's loop as the API's (uvicorn runs uvloop): with asyncio's own, reading the
    # 0.5 MB answer of the latest of 1,000 devices cost the bench ~1.5 ms of CPU per request
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    load_before = os.getloadavg()
    results: dict = {"rows": rows, "rate_rps": args.rate, "duration_s": args.duration,
                     "api_workers": args.workers or "default", "devices": DEVICES,
                     "points": DEVICES * POINTS, "load_average_before": load_before,
                     "cores": os.cpu_count()}
    try:
        print("idle:", flush=True)
        results["idle"] = asyncio.run(run_scenarios(args, port, headers, url, end, proc.pid))
        if args.ingest_rps:
            nice = settings.ingest_nice if args.ingest_nice is None else args.ingest_nice
            results["ingest_nice"] = nice
            load = IngestLoad(args.ingest_rps, nice)
            try:
                load.start()
                print(f"under ingest (target {args.ingest_rps:,.0f} readings/s):", flush=True)
                results["under_ingest"] = asyncio.run(run_scenarios(args, port, headers, url,
                                                                    end, proc.pid, load))
                results["under_ingest_rps"] = round(load.committed_rps())
                print(f"  ingested {results['under_ingest_rps']:,} readings/s meanwhile")
            finally:
                load.stop()
                results["ingest_load"] = load.report
    finally:
        proc.terminate()
        proc.wait(10)
    summarise(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"rows {rows:,}; load average before {load_before[0]:.2f} on {os.cpu_count()} cores"
          f" (the machine is shared); written {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
