"""`make bench-ingest`: how fast readings go from MQTT to committed rows, against the ceiling.

One run measures, on a database and a broker of its own (the local cluster, a private
Mosquitto on a free port):
1. the ceiling: binary COPY of pre-encoded rows into `readings`, 5000 rows per transaction;
2. the worker's drain rate with 50-reading and with single-reading messages: a backlog is
   published while the worker is paused (SIGSTOP), then it is resumed and timed from 10 % to
   90 % of the backlog committed (so the publisher does not share the CPU with the worker);
3. the live maximum: the highest rate of 50-reading messages the whole chain sustains with
   the publisher (mosquitto_pub) running on the same cores, by bisection (bench/ingest_live.py);
4. publish -> commit latency at half the live maximum, paced, for --duration seconds
   (commits seen by polling the batch keys every 3 ms), with the worker's memory sampled
   every second, to show whether it stays flat.
Prints each figure and its ratio to the ceiling; writes bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import paho.mqtt.client as paho
import psycopg

from bench.ingest_cost import ceiling_by_index, latest_cost, latest_live_cost
from bench.ingest_latest import latest_parts_cost
from bench.ingest_live import FORMS, form, live_max, paced_latency, payload
from cityops import wire
from cityops.settings import load_settings
from infra.broker.accounts import add_gateway, ensure_service_account
from infra.broker.process import Broker
from infra.db.admin import database_beside, drop_database, ensure_migrated
from ingestion.sink import numeric_copy_data

REPO = Path(__file__).parents[1]
RESULTS = REPO / "bench" / "results" / "ingest.json"
DEVICES, POINTS = 100, 10


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Rig:
    def __init__(self) -> None:
        self.settings = load_settings()
        admin = self.settings.database_admin_url.get_secret_value()
        self.db = f"cityops_bench_{secrets.token_hex(4)}"
        self.url = database_beside(self.settings.database_url.get_secret_value(), self.db)
        ensure_migrated(admin, self.url)
        self.tmp = Path(tempfile.mkdtemp(prefix="cityops-bench-"))
        self.ingest_password = secrets.token_urlsafe(16)
        (self.tmp / "broker").mkdir()
        ensure_service_account(self.tmp / "broker", "svc-ingest", self.ingest_password)
        self.gateway = "bench-gw"
        self.gateway_password = add_gateway(self.tmp / "broker", self.gateway)
        self.broker = Broker(self.tmp / "broker", free_port())
        self.broker.write_config()
        self.broker.start()
        self.point_names = self._register()
        self.worker: subprocess.Popen | None = None
        self.metrics_port = free_port()

    def _register(self) -> list[tuple[str, str]]:
        names = [(f"dev-{d:03d}", f"p{p}") for d in range(DEVICES) for p in range(POINTS)]
        with psycopg.connect(self.url) as conn, conn.transaction():
            conn.execute("INSERT INTO gateways (id) VALUES (%s)", (self.gateway,))
            conn.execute("INSERT INTO profiles (id, protocol, category, body)"
                         " VALUES ('bench', 'mqtt', 'bench', '{}')")
            for d in range(DEVICES):
                conn.execute("INSERT INTO devices (id, gateway_id, profile_id)"
                             " VALUES (%s, %s, 'bench')", (f"dev-{d:03d}", self.gateway))
            conn.cursor().executemany(
                "INSERT INTO points (device_id, name, data_type) VALUES (%s, %s, 'float32')",
                names)
        return names

    def start_worker(self, extra: dict[str, str] | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CITYOPS_")}
        env |= {"CITYOPS_ENV_FILE": "/nonexistent", "CITYOPS_DATABASE_URL": self.url,
                "CITYOPS_MQTT_URL": f"mqtt://127.0.0.1:{self.broker.port}",
                "CITYOPS_INGEST_MQTT_PASSWORD": self.ingest_password,
                "CITYOPS_STATE_DIR": str(self.tmp / "state"),
                "CITYOPS_INGEST_METRICS_PORT": str(self.metrics_port)}
        # worker settings to try, e.g. CITYOPS_BENCH_INGEST_BATCH_MAX_READINGS=20000
        env |= {k.replace("CITYOPS_BENCH_", "CITYOPS_"): v for k, v in os.environ.items()
                if k.startswith("CITYOPS_BENCH_")}
        env |= extra or {}
        log = (self.tmp / "worker.log").open("ab")
        seen = log.tell()  # a restarted worker appends: look past what the last one wrote
        self.worker = subprocess.Popen([sys.executable, "-m", "cli", "ingest"], cwd=REPO,
                                       env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120  # a loaded machine starts Python slowly
        while "subscribed" not in (self.tmp / "worker.log").read_text(errors="replace")[seen:]:
            if time.monotonic() > deadline or self.worker.poll() is not None:
                raise RuntimeError(f"worker did not start; see {self.tmp / 'worker.log'}")
            time.sleep(0.05)

    def stop_worker(self) -> None:
        """A clean stop (SIGTERM): the next worker takes the same slot and session."""
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            self.worker.wait(60)
        self.worker = None

    def stored(self) -> float:
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                      timeout=5).read().decode()
        for line in body.splitlines():
            if line.startswith("cityops_ingest_readings_total "):
                return float(line.split()[1])
        return 0.0

    def rss_mb(self, field: str = "VmRSS") -> float:
        assert self.worker is not None
        for line in Path(f"/proc/{self.worker.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_s(self) -> float:
        """The worker's user + system CPU seconds so far."""
        assert self.worker is not None
        return process_cpu_s(self.worker.pid)

    def db_cpu_s(self) -> float:
        """User + system CPU seconds so far of this database's backends (the worker's
        connections, while it runs): the database's share of a reading, whatever the load."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            pids = [r[0] for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()")]
        return sum(process_cpu_s(pid) for pid in pids)

    def publisher(self) -> paho.Client:
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5,
                             client_id=wire.gateway_client_id(self.gateway))
        client.max_inflight_messages_set(2000)
        client.max_queued_messages_set(0)
        client.username_pw_set(self.gateway, self.gateway_password)
        client.connect("127.0.0.1", self.broker.port)
        client.loop_start()
        return client

    def close(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(signal.SIGCONT)
            self.worker.terminate()
            try:
                self.worker.wait(60)
            except subprocess.TimeoutExpired:
                self.worker.kill()
        self.broker.stop()
        admin = self.settings.database_admin_url.get_secret_value()
        drop_database(admin, self.db)
        shutil.rmtree(self.tmp, ignore_errors=True)


def copy_ceiling(rig: Rig, seconds: float) -> float:
    """Rows/s of binary COPY into readings, 5000 rows per transaction, bytes made beforehand."""
    return copy_ceiling_cpu(rig, seconds)[0]


def copy_ceiling_cpu(rig: Rig, seconds: float) -> tuple[float, float]:
    """copy_ceiling, and the CPU microseconds its backend spent per row (what the indexes
    cost the server, less moved by other work on the machine than the rate)."""
    t0 = int(time.time() * 1000) - 3_600_000
    chunks = [numeric_copy_data([(t0 + c * 100 + i // 1000, 1 + i % 1000, float(i), 0)
                                 for i in range(5000)]) for c in range(40)]
    rows, started = 0, time.perf_counter()
    with psycopg.connect(rig.url) as conn:
        backend = conn.info.backend_pid
        cpu_before = process_cpu_s(backend)
        while time.perf_counter() - started < seconds:
            for data in chunks:
                with conn.transaction(), conn.cursor() as cur, cur.copy(
                        "COPY readings (time, point_id, value, quality) FROM STDIN"
                        " WITH (FORMAT BINARY)") as copy:
                    copy.write(data)
                rows += 5000
        elapsed = time.perf_counter() - started
        cpu_us = (process_cpu_s(backend) - cpu_before) * 1e6 / rows
        conn.execute("TRUNCATE readings")
        conn.commit()
    return rows / elapsed, cpu_us


def drain_rate(rig: Rig, per_message: int, readings: int) -> tuple[float, float]:
    """Readings/s from 10 % to 90 % of a backlog committed, the worker resumed at t = 0;
    and the worker's CPU microseconds per reading over the whole drain (independent of how
    loaded the shared machine is)."""
    assert rig.worker is not None
    already = rig.stored()
    rig.worker.send_signal(signal.SIGSTOP)
    client, stream = rig.publisher(), str(uuid.uuid4())
    ts = int(time.time() * 1000)
    messages = readings // per_message
    infos = []
    for seq in range(1, messages + 1):
        start = (seq * per_message) % len(rig.point_names)
        names = (rig.point_names * 2)[start:start + per_message]
        infos.append(client.publish(wire.telemetry_topic(rig.gateway),
                                    payload(stream, seq, names, ts + seq), qos=1))
        if len(infos) >= 1000:
            infos.pop(0).wait_for_publish(60)
    for info in infos:
        info.wait_for_publish(60)
    client.loop_stop()
    client.disconnect()
    cpu_before = rig.cpu_s()
    rig.worker.send_signal(signal.SIGCONT)
    marks: dict[float, float] = {}
    deadline = time.monotonic() + 600
    while len(marks) < 2 and time.monotonic() < deadline:
        done = (rig.stored() - already) / (messages * per_message)
        for mark in (0.1, 0.9):
            if done >= mark and mark not in marks:
                marks[mark] = time.perf_counter()
        time.sleep(0.1)  # scraping the worker's metrics costs it CPU: not too often
    while rig.stored() - already < messages * per_message and time.monotonic() < deadline:
        time.sleep(0.05)
    elapsed = marks[0.9] - marks[0.1]
    if elapsed < 1.0:
        print(f"  (backlog of {messages * per_message:,} drained too fast to time well:"
              " raise --batched-readings / --single-readings)")
    cpu_us = (rig.cpu_s() - cpu_before) * 1e6 / (messages * per_message)
    return 0.8 * messages * per_message / max(elapsed, 0.05), cpu_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60,
                        help="seconds of the paced latency / memory run (600 for the soak)")
    parser.add_argument("--ceiling-s", type=float, default=10)
    parser.add_argument("--form", choices=FORMS, default="grouped",
                        help="telemetry form of the published messages (grouped: the agent's)")
    parser.add_argument("--batched-readings", type=int, default=3_000_000)
    parser.add_argument("--single-readings", type=int, default=300_000)
    parser.add_argument("--paced-rps", type=float, default=0,
                        help="rate of the latency run (default: half the 50-reading rate)")
    parser.add_argument("--live-step-s", type=float, default=30,
                        help="seconds of each step of the search for the live maximum")
    parser.add_argument("--trace", type=Path,
                        help="write each paced message's send time and latency to this file")
    parser.add_argument("--costs-only", action="store_true",
                        help="only the side-by-side costs (bench/ingest_cost.py): the time"
                        " index's on the ceiling, readings_latest's on the 50-reading drain;"
                        " merged into the results file")
    parser.add_argument("--cost-rounds", type=int, default=4,
                        help="ABBA rounds of each side-by-side cost (--costs-only)")
    parser.add_argument("--live-cost-rps", type=float, default=100_000,
                        help="paced rate of the live readings_latest cost (--costs-only)")
    parser.add_argument("--live-cost-s", type=float, default=10,
                        help="seconds of each live readings_latest cost sample")
    args = parser.parse_args()
    form["telemetry"] = args.form
    if args.costs_only:
        return costs_only(args)
    load = os.getloadavg()
    writeback = int(Path("/proc/sys/vm/dirty_background_bytes").read_text())
    rig = Rig()
    try:
        ceiling = copy_ceiling(rig, args.ceiling_s)
        print(f"copy ceiling          {ceiling:12,.0f} readings/s")
        by_index = ceiling_by_index(rig, args.ceiling_s, rounds=2)
        rig.start_worker()
        batched, batched_cpu = drain_rate(rig, 50, args.batched_readings)
        print(f"50-reading messages   {batched:12,.0f} readings/s  ({batched / ceiling:.0%}"
              f" of ceiling; target >= 70%); worker CPU {batched_cpu:.2f} us/reading"
              f" = {1e6 / batched_cpu:,.0f} readings per CPU-second")
        single, single_cpu = drain_rate(rig, 1, args.single_readings)
        print(f"1-reading messages    {single:12,.0f} readings/s  ({single / ceiling:.0%}"
              f" of ceiling; target >= 30,000/s); worker CPU {single_cpu:.2f} us/reading"
              f" = {1e6 / single_cpu:,.0f} readings per CPU-second")
        live = live_max(rig, batched, args.live_step_s)
        print(f"50-reading, publisher live {live:10,.0f} readings/s  ({live / ceiling:.0%}"
              " of ceiling; publisher, broker, worker and database sharing the cores)")
        paced_rps = args.paced_rps or live / 2
        paced = paced_latency(rig, paced_rps, args.duration, args.trace)
        print(f"latency at {paced_rps:,.0f} readings/s for {args.duration:g} s:"
              f" p50 {paced['p50_ms']:.1f} ms, p99 {paced['p99_ms']:.1f} ms (target < 250)"
              f"  [{paced['unseen']} of {paced['messages']} messages not seen]")
        print(f"worker memory during the paced run: {paced['rss_first_mb']:.0f} MB at start,"
              f" {paced['rss_last_mb']:.0f} MB at end, max {paced['rss_max_mb']:.0f} MB")
        peak = rig.rss_mb("VmHWM")
        print(f"worker peak memory    {peak:12,.0f} MB (VmHWM, whole run)")
        print(f"load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
              f" on {os.cpu_count()} cores (the machine is shared)")
        if writeback == 0:
            print("  vm.dirty_background_bytes is 0 (the kernel default): expect commit stalls;"
                  " infra/local/install.sh sets it")
    finally:
        rig.close()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    # the side-by-side costs of the last --costs-only run stay (this run redoes the index's)
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    RESULTS.write_text(json.dumps(old | {
        "copy_ceiling_rps": round(ceiling), "batched_rps": round(batched),
        "single_rps": round(single), "live_rps": round(live), "p99_ms": round(paced["p99_ms"], 1),
        "peak_rss_mb": round(peak, 1), "p50_ms": round(paced["p50_ms"], 1),
        "batched_worker_cpu_us_per_reading": round(batched_cpu, 3),
        "single_worker_cpu_us_per_reading": round(single_cpu, 3),
        "batched_ratio": round(batched / ceiling, 3), "single_ratio": round(single / ceiling, 3),
        "paced_rps": round(paced_rps), "duration_s": args.duration,
        "rss_paced_first_mb": paced["rss_first_mb"], "rss_paced_last_mb": paced["rss_last_mb"],
        "load_average_before": load, "dirty_background_bytes": writeback,
        "telemetry_form": args.form,
    } | by_index, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(REPO)}")


def costs_only(args: argparse.Namespace) -> None:
    load = os.getloadavg()
    rig = Rig()
    try:
        results = ceiling_by_index(rig, args.ceiling_s, args.cost_rounds)
        print(f"copy ceiling: old B-tree {results['copy_ceiling_old_index_rps']:,} rows/s,"
              f" BRIN {results['copy_ceiling_new_index_rps']:,} rows/s"
              f" ({results['copy_ceiling_index_gain']:+.1%}; target +20%); rows per backend"
              f" CPU-second {results['copy_cpu_index_gain']:+.1%}")
        rig.start_worker()
        results |= latest_cost(rig, args.batched_readings, args.cost_rounds)
        print(f"50-reading drain: with readings_latest {results['batched_with_latest_rps']:,}"
              f" readings/s, without {results['batched_without_latest_rps']:,}"
              f" (cost {results['latest_cost_drain_rates']:.1%}: rates this load moves by"
              f" more); worker + database CPU per reading {results['latest_cpu_cost']:+.1%}")
        results |= latest_parts_cost(rig, results["worker_cpu_us_without_latest"]
                                     + results["db_cpu_us_without_latest"])
        # the cost that holds under load: the drain's stores, with and without the upsert
        # alternating store by store (bench/ingest_latest.py)
        results["latest_cost"] = results["latest_drain_cost"]
        print(f"readings_latest cost: {results['latest_cost']:.1%} of the drain's CPU"
              f" (target <= 5%); {results['latest_live_cost']:.1%} at 100,000/s live"
              f" ({results['latest_live_cost_every_store']:.1%} when every store wrote it)")
        results |= latest_live_cost(rig, args.live_cost_rps, args.live_cost_s)
        runs = results["live_cpu_us_per_reading"]
        print(f"live at {args.live_cost_rps:,.0f} readings/s, worker + database CPU per"
              f" reading: without readings_latest {runs['without']:.2f} us, with"
              f" {runs['with']:.2f} us ({results['latest_live_cpu_cost']:+.1%}), written by"
              f" every store {runs['every_store']:.2f} us"
              f" ({results['latest_live_cpu_cost_every_store']:+.1%})")
    finally:
        rig.close()
    print(f"load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
          f" on {os.cpu_count()} cores (the machine is shared)")
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(old | results | {"costs_load_average_before": load},
                                  indent=2) + "\n")
    print(f"merged into {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
