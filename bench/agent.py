"""`make bench-agent`: one agent process against many simulated devices.

1. Modbus: the real Agent (drivers, recorder, SQLite queue, uplink to a private Mosquitto,
   with mosquitto_sub standing in for ingestion) polls --devices simulated meters of 120
   points each, spread over --sims simulator processes (several unit ids per connection).
   Reports readings/s and the CPU the agent process used (cores = CPU seconds / wall second),
   and the queued bytes per reading; --form readings sends the list form instead of groups,
   --form both runs the two one after the other; the bare client's figure is the limit.
2. OPC-UA: a simulator process serves --opcua-items variables that all change every second;
   the driver subscribes (monitored items created in batches) and counts notifications over
   the window: delivered ratio = notifications / (items x seconds).
3. Queue drain: --drain-readings readings pre-queued in 500-reading batches (groups of 100
   points, or the list form with --form readings), drained by the uplink to the broker.

Writes bench/results/agent.json. The machine is shared: figures are as measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import yaml
from asyncua import ua

from bench.agent_bare import bare_modbus
from edge_agents.agent import Agent, encode_readings
from edge_agents.config import AgentConfig, LoadedAgentConfig, QueueConfig
from edge_agents.drivers.opcua.config import OpcUaEndpoint
from edge_agents.drivers.opcua.driver import OpcUaDriver
from edge_agents.points import Reading
from edge_agents.profiles import parse_profile
from edge_agents.queue import LocalQueue
from edge_agents.readings import Layout, ReadingBlock, encode_grouped
from edge_agents.uplink import Uplink
from infra.broker.accounts import add_gateway, ensure_service_account
from infra.broker.process import Broker
from simulators.opcua_server import TICK_METHOD
from tests.helpers import free_port, port_open

REPO = Path(__file__).parents[1]
RESULTS = REPO / "bench" / "results" / "agent.json"
GATEWAY = "gw-bench"


def meter_profile() -> dict:
    """120 points in 160 registers: 80 scaled uint16, 20 float32 (CDAB), 20 int32."""
    points = [{"name": f"u{i}", "data_type": "uint16", "scale": 0.1,
               "address": {"table": "input_register", "offset": i},
               "simulate": {"kind": "sine", "mean": 500, "amplitude": 100, "period_s": 30}}
              for i in range(80)]
    points += [{"name": f"f{i}", "data_type": "float32",
                "address": {"table": "input_register", "offset": 80 + 2 * i, "order": "CDAB"},
                "simulate": {"kind": "sine", "mean": 230, "amplitude": 5, "period_s": 20}}
               for i in range(20)]
    points += [{"name": f"i{i}", "data_type": "int32",
                "address": {"table": "input_register", "offset": 120 + 2 * i},
                "simulate": {"kind": "ramp", "mean": 1000, "amplitude": 50, "period_s": 60}}
               for i in range(20)]
    return {"model": "bench-meter", "category": "power", "protocol": "modbus", "points": points}


def opcua_profile(items: int) -> dict:
    return {"model": "bench-opcua", "category": "environment", "protocol": "opcua",
            "points": [{"name": f"p{i}", "data_type": "float64",
                        "address": {"node": f"ns=2;i={i + 1}"},
                        "simulate": {"kind": "ramp", "mean": i, "amplitude": 1000,
                                     "period_s": 3600}} for i in range(items)]}


class Env:
    """A private broker with a gateway account and a mosquitto_sub standing in for ingestion."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.broker = Broker(tmp / "broker", free_port())
        sink_password = secrets.token_urlsafe(12)
        ensure_service_account(self.broker.state_dir, "svc-ingest", sink_password)
        self.password = add_gateway(self.broker.state_dir, GATEWAY)
        self.broker.write_config()
        self.broker.start()
        self.url = f"mqtt://127.0.0.1:{self.broker.port}"
        self.sink = subprocess.Popen(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.broker.port), "-V", "mqttv5",
             "-q", "1", "-u", "svc-ingest", "-P", sink_password, "-t",
             "$share/ingest/cityops/v1/+/telemetry"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs: list[subprocess.Popen] = [self.sink]

    def start(self, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=os.environ | {"CITYOPS_LOG_LEVEL": "WARNING"})
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        self.broker.stop()


async def _wait_port(port: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(port_open, port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on {port}")
        await asyncio.sleep(0.1)


async def bench_modbus(env: Env, args: argparse.Namespace) -> dict:
    profile_path = env.tmp / "meter.yaml"
    profile_path.write_text(yaml.safe_dump(meter_profile()))
    per_sim = -(-args.devices // args.sims)
    ports = [free_port() for _ in range(args.sims)]
    for port in ports:
        env.start("sim", "modbus", "--profile", str(profile_path), "--port", str(port),
                  "--count", str(per_sim), "--tick-s", "1")
    for port in ports:
        await _wait_port(port)
    devices = [{"id": f"m{n}", "profile": str(profile_path), "poll_interval_s": args.poll_s,
                "endpoint": {"host": "127.0.0.1", "port": ports[n % args.sims],
                             "unit_id": n // args.sims + 1}} for n in range(args.devices)]
    # --form both: the two forms one after the other against the same simulators, then the
    # bare client: side by side in one run (the machine is shared; runs apart differ more)
    forms = ["grouped", "readings"] if args.form == "both" else [args.form]
    runs = {form: await _agent_window(env, args, devices, form) for form in forms}
    # the limit, in the same run against the same simulators: a bare client (bench/agent_bare.py)
    bare = await bare_modbus(ports, args.devices, args.poll_s, args.warmup_s, args.duration_s)
    print(f"modbus, bare pymodbus client on the same registers: {bare['bare_modbus_rps']:,}"
          f" readings/s, CPU {bare['bare_modbus_cpu_cores']:.3f} cores, "
          f"{bare['bare_modbus_system_share']:.0%} in the kernel"
          f" ({bare['bare_modbus_readings_per_cpu_s']:,} readings per CPU second)")
    results: dict = {}
    for form, run in runs.items():
        ratio = run["modbus_readings_per_cpu_s"] / max(bare["bare_modbus_readings_per_cpu_s"], 1)
        print(f"  agent ({form} form) / bare = {ratio:.2f} (target >= 0.70)")
        run["modbus_vs_bare_ratio"] = round(ratio, 3)
        # the first form's figures under the usual keys, the second's prefixed by its form
        prefix = "" if form == forms[0] else f"{form}_form_"
        results |= {prefix + key: value for key, value in run.items()}
    return results | bare


async def _agent_window(env: Env, args: argparse.Namespace, devices: list[dict],
                        form: str) -> dict:
    """The real agent with its own fresh queue: readings/s and its CPU over the window."""
    queue_path = env.tmp / f"modbus-queue-{form}.db"
    config = AgentConfig.model_validate({
        "gateway": GATEWAY, "broker": {"url": env.url},
        "queue": {"path": str(queue_path), "batch_max_readings": args.batch_readings},
        "telemetry_form": form, "devices": devices})
    profile = parse_profile(meter_profile(), "bench-meter")
    agent = Agent(LoadedAgentConfig(config=config, profiles={d.id: profile
                                                             for d in config.devices}))
    os.environ["CITYOPS_GATEWAY_PASSWORD"] = env.password
    task = asyncio.create_task(agent.run())
    await asyncio.sleep(args.warmup_s)
    r0, c0, t0, k0 = agent.readings_total, time.process_time(), time.monotonic(), os.times()
    await asyncio.sleep(args.duration_s)
    r1, c1, t1, k1 = agent.readings_total, time.process_time(), time.monotonic(), os.times()
    online = sum(1 for s in agent.device_state.values() if s == "online")
    backlog = agent.queue.readings
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    rps, cores = (r1 - r0) / (t1 - t0), (c1 - c0) / (t1 - t0)
    per_reading = _queued_bytes_per_reading(queue_path)
    # the kernel's share (loopback TCP sends are most of it) beside the process's own
    system = (k1.system - k0.system) / max(c1 - c0, 1e-9)
    print(f"modbus ({form} form): {args.devices} devices x 120 points ({online} online) over "
          f"{args.sims} simulators: {rps:,.0f} readings/s, agent CPU {cores:.3f} cores, "
          f"{system:.0%} in the kernel ({rps / max(cores, 1e-9):,.0f} readings per CPU second);"
          f" queue backlog {backlog}; {per_reading:.1f} bytes per reading")
    return {"modbus_rps": round(rps), "modbus_cpu_cores": round(cores, 3),
            "modbus_readings_per_cpu_s": round(rps / max(cores, 1e-9)),
            "modbus_system_share": round(system, 3),
            "modbus_devices_online": online, "modbus_queue_backlog": backlog,
            "modbus_telemetry_form": form,
            "modbus_batch_max_readings": args.batch_readings,
            "modbus_bytes_per_reading": round(per_reading, 1)}


def _queued_bytes_per_reading(path: Path) -> float:
    """What the agent queued and sent per reading (mosquitto_sub sends no receipts, so every
    batch is still queued)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        size, count = db.execute("SELECT sum(length(readings)), sum(count) FROM batches"
                                 ).fetchone()
    return (size or 0) / max(count or 0, 1)


async def bench_opcua(env: Env, args: argparse.Namespace) -> dict:
    items, port = args.opcua_items, free_port()
    path = env.tmp / "opcua.yaml"
    path.write_text(yaml.safe_dump(opcua_profile(items)))
    env.start("sim", "opcua", "--profile", str(path), "--port", str(port), "--tick-s", "0")
    await _wait_port(port, timeout_s=120)
    profile = parse_profile(opcua_profile(items), "bench-opcua")
    endpoint = OpcUaEndpoint(protocol="opcua", url=f"opc.tcp://127.0.0.1:{port}/cityops/",
                             publishing_interval_ms=250, sampling_interval_ms=0,
                             queue_size=10, batch_size=1000)
    driver = OpcUaDriver("bench-opcua", profile, endpoint, timeout_s=30)
    await driver.connect()
    count = 0

    def on_readings(readings: list[Reading]) -> None:
        nonlocal count
        count += len(readings)

    started = time.monotonic()
    task = asyncio.create_task(driver.subscribe(on_readings))
    await _until(lambda: driver.items_created >= items, 120)
    created_s = time.monotonic() - started
    await _until(lambda: count >= items, 60)  # every item's initial value
    # the bench paces the changes: each call of the simulator's tick method changes every
    # item once; at the end every change must have arrived
    client = driver._client
    assert client is not None
    objects, tick = client.get_node("i=85"), ua.NodeId.from_string(TICK_METHOD)
    n0, c0, t0 = count, time.process_time(), time.monotonic()
    ticks = 0
    while time.monotonic() - t0 < args.duration_s:
        due = t0 + ticks + 1
        await objects.call_method(tick)
        ticks += 1
        await asyncio.sleep(max(0.0, due - time.monotonic()))
    t1 = time.monotonic()
    expected = ticks * items
    await _until(lambda: count - n0 >= expected, 30)
    n1, c1, t2 = count, time.process_time(), time.monotonic()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    await driver.close()
    ratio = (n1 - n0) / expected
    print(f"opc-ua: {driver.items_created}/{items} monitored items created in {created_s:.1f} s;"
          f" {ticks} changes of every item in {t1 - t0:.1f} s ({expected / (t1 - t0):,.0f} "
          f"changes/s), {n1 - n0:,} notifications received (the last {t2 - t1:.1f} s after "
          f"the last change): delivered ratio {ratio:.4f}; client CPU "
          f"{(c1 - c0) / (t2 - t0):.2f} cores")
    return {"opcua_items": driver.items_created,
            "opcua_changes_per_s": round(expected / (t1 - t0)),
            "opcua_delivered_ratio": round(ratio, 4)}


async def _until(check, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check() and time.monotonic() < deadline:  # noqa: ASYNC110 - a bench's poll
        await asyncio.sleep(0.05)


async def bench_drain(env: Env, args: argparse.Namespace) -> dict:
    queue = LocalQueue(env.tmp / "drain.db", max_bytes=4 << 30)
    await queue.open()
    now = int(time.time() * 1000)
    if args.form == "readings":
        batch = encode_readings([Reading(f"m{i % 50}", f"u{i % 120}", now + i, 230.5 + i % 7)
                                 for i in range(500)])
    else:  # as the agent queues polls: five devices' 100 points, one group each
        blocks = [ReadingBlock(f"m{d}") for d in range(5)]
        for d, block in enumerate(blocks):
            block.add(Layout(f"m{d}", [f"u{p}" for p in range(100)]), now + d,
                      [230.5 + p % 7 for p in range(100)])
        batch = encode_grouped(blocks)
    for _ in range(args.drain_readings // 500):
        await queue.append(batch, 500)
    config = AgentConfig.model_validate({
        "gateway": GATEWAY, "broker": {"url": env.url, "password_env": "BENCH_PW"},
        "queue": {"path": str(env.tmp / "drain.db"), "publish_window": 256}})
    os.environ["BENCH_PW"] = env.password
    from cityops import wire

    uplink = Uplink(config, queue, lambda s: wire.Status(state=s))
    batches = queue.batches
    t0 = time.monotonic()
    task = asyncio.create_task(uplink.run())
    # mosquitto_sub sends no commit receipts, so the batches stay queued: what is timed is
    # the uplink's send rate, every batch acknowledged by the broker
    await _until(lambda: uplink.published_batches >= batches, 300)
    elapsed = time.monotonic() - t0
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await queue.close()
    sent = min(uplink.published_batches, batches) * 500
    rps = sent / elapsed
    print(f"queue drain: {sent:,} readings in {elapsed:.1f} s: {rps:,.0f} readings/s "
          f"({uplink.published_batches} batches acknowledged by the broker)")
    return {"queue_drain_rps": round(rps)}


async def main(args: argparse.Namespace) -> dict:
    results: dict = {"machine": f"{os.cpu_count()} cores, shared with other work",
                     "load_average_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        env = Env(Path(tmp))
        try:
            if "drain" in args.only:
                results |= await bench_drain(env, args)
            if "modbus" in args.only:
                results |= await bench_modbus(env, args)
            if "opcua" in args.only:
                results |= await bench_opcua(env, args)
        finally:
            env.close()
    targets = {"modbus_rps": 50_000, "opcua_delivered_ratio": 0.99, "queue_drain_rps": 100_000}
    for key, target in targets.items():
        if key not in results:
            continue
        print(f"  {key}: {results.get(key)} (target {target:,}; ratio "
              f"{results.get(key, 0) / target:.2f})")
    print(f"  modbus_cpu_cores: {results.get('modbus_cpu_cores')} (target <= 1.0)")
    return results


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=240)
    parser.add_argument("--sims", type=int, default=4)
    parser.add_argument("--poll-s", type=float, default=0.5)
    parser.add_argument("--opcua-items", type=int, default=10_000)
    parser.add_argument("--drain-readings", type=int, default=1_000_000)
    parser.add_argument("--warmup-s", type=float, default=5)
    parser.add_argument("--duration-s", type=float, default=15)
    # the agent's own default (edge_agents/config.py: 5000 grouped readings, ~65 kB, fewer
    # bytes than the 1000 list-form readings this bench used before); --batch-readings 1000
    # for the figures before (docs/ingestion.md)
    parser.add_argument("--batch-readings", type=int,
                        default=QueueConfig.model_fields["batch_max_readings"].default,
                        help="the agent's queue.batch_max_readings in the Modbus run")
    parser.add_argument("--form", choices=["grouped", "readings", "both"], default="grouped",
                        help="the agent's telemetry_form in the Modbus run; both: one after"
                        " the other in the same run")
    parser.add_argument("--only", nargs="+", default=["drain", "modbus", "opcua"],
                        choices=["drain", "modbus", "opcua"])
    args = parser.parse_args()
    results = asyncio.run(main(args))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(REPO)}: {orjson.dumps(results).decode()}")


if __name__ == "__main__":
    cli()
