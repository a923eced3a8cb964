"""`make bench-snmp`: the SNMP driver polling interface counters, against the limit.

--switches simulated 48-port switches (interface counters: ifHCInOctets and ifHCOutOctets as
bit rates and ifOperStatus per port, plus sysUpTime: 145 points) spread over --sims
`cityops sim snmp` processes. Two phases of --duration seconds each, against the same
simulators:

1. the limit: one Net-SNMP `snmpbulkwalk` per simulator in a loop, walking the same three
   columns (C, no per-point work): values per second;
2. the driver: one SnmpDriver per switch, each polling back to back, all in this process:
   readings per second and the CPU this process used (cores = CPU seconds / wall second).

Then the ratio of (2) to (1), and what the issue's load needs: every switch polled every
--interval-s seconds (200 x 145 / 10 = 2,900 readings/s) at the CPU measured per reading.
Writes bench/results/snmp.json. The machine is shared: figures are as measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from edge_agents.drivers.snmp.config import SnmpEndpoint
from edge_agents.drivers.snmp.driver import SnmpDriver
from edge_agents.profiles import parse_profile
from tests.component.snmp_kit import free_udp_port

REPO = Path(__file__).parents[1]
RESULTS = REPO / "bench" / "results" / "snmp.json"
COLUMNS = ("1.3.6.1.2.1.31.1.1.1.6", "1.3.6.1.2.1.31.1.1.1.10", "1.3.6.1.2.1.2.2.1.8")


def switch_profile(ports: int) -> dict:
    rate = {"data_type": "float64", "unit": "bit/s", "scale": 8, "rate": True}
    return {"model": "bench-switch-48", "category": "network", "protocol": "snmp",
            "points": [{"name": "uptime_s", "data_type": "float64", "scale": 0.01,
                        "address": {"oid": "1.3.6.1.2.1.1.3.0"}}],
            "tables": [{"name": "port", "row_range": [1, ports], "columns": [
                {"name": "in_bps", "oid": COLUMNS[0], **rate,
                 "simulate": {"kind": "sine", "mean": 4e7, "amplitude": 2e7}},
                {"name": "out_bps", "oid": COLUMNS[1], **rate,
                 "simulate": {"kind": "sine", "mean": 2e7, "amplitude": 1e7}},
                {"name": "oper_up", "data_type": "bool", "oid": COLUMNS[2], "equals": 1}]}]}


def _wait_answering(port: int, timeout_s: float = 60) -> None:
    env = {**os.environ, "MIBS": "", "SNMP_PERSISTENT_DIR": tempfile.mkdtemp()}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = subprocess.run(["snmpget", "-v2c", "-c", "bench", "-t", "0.5", "-r", "0",
                               f"127.0.0.1:{port}", "1.3.6.1.2.1.1.3.0"], env=env,
                              capture_output=True, check=False)
        if done.returncode == 0:
            return
    raise SystemExit(f"the simulator on {port} did not answer within {timeout_s} s")


def walk_limit(ports: list[int], duration_s: float) -> float:
    """Values per second that snmpbulkwalk processes (one per simulator, in a loop) fetch."""
    env = {**os.environ, "MIBS": "", "SNMP_PERSISTENT_DIR": tempfile.mkdtemp()}
    values, deadline = 0, time.monotonic() + duration_s
    started = time.monotonic()
    while time.monotonic() < deadline:
        procs = [subprocess.Popen(["snmpbulkwalk", "-v2c", "-c", "bench", "-Cr25", "-On",
                                   f"127.0.0.1:{port}", column], env=env,
                                  stdout=subprocess.PIPE, text=True)
                 for port in ports for column in COLUMNS]
        for proc in procs:
            out, _ = proc.communicate()
            values += out.count("\n")
    return values / (time.monotonic() - started)


async def driver_rate(profile, ports: list[int], switches: int, duration_s: float) -> dict:
    os.environ["CITYOPS_BENCH_COMMUNITY"] = "bench"
    drivers = [SnmpDriver(f"sw-{i}", profile, SnmpEndpoint(
        protocol="snmp", host="127.0.0.1", port=ports[i % len(ports)],
        community={"env": "CITYOPS_BENCH_COMMUNITY"}, oids_per_request=48), timeout_s=10,
        poll_interval_s=0)  # back to back: every window counts
        for i in range(switches)]
    await asyncio.gather(*(d.connect() for d in drivers))
    counted = [0]

    async def loop(driver: SnmpDriver, deadline: float) -> None:
        while time.monotonic() < deadline:
            got = len(await driver.read())  # not `+= len(await ...)`: that reads the total
            counted[0] += got                # before the await and loses the others' counts

    cpu0, t0 = time.process_time(), time.monotonic()
    await asyncio.gather(*(loop(d, t0 + duration_s) for d in drivers))
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    requests = sum(d.requests for d in drivers)
    await asyncio.gather(*(d.close() for d in drivers))
    return {"driver_readings_per_s": round(counted[0] / wall),
            "driver_cores": round(cpu / wall, 2),
            "driver_cpu_us_per_reading": round(cpu / max(counted[0], 1) * 1e6, 1),
            "requests": requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--switches", type=int, default=200)
    parser.add_argument("--ports", type=int, default=48)
    parser.add_argument("--sims", type=int, default=2)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--interval-s", type=float, default=10.0)
    args = parser.parse_args()
    data = switch_profile(args.ports)
    profile = parse_profile(data, "bench")
    tmp = Path(tempfile.mkdtemp())
    (tmp / "switch.yaml").write_text(yaml.safe_dump(data))
    ports = [free_udp_port() for _ in range(args.sims)]
    env = {**os.environ, "CITYOPS_SIM_COMMUNITY": "bench", "CITYOPS_LOG_LEVEL": "WARNING"}
    sims = [subprocess.Popen([sys.executable, "-m", "cli", "sim", "snmp", "--profile",
                              str(tmp / "switch.yaml"), "--port", str(p)], cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for p in ports]
    try:
        for port in ports:
            _wait_answering(port)
        limit = walk_limit(ports, args.duration)
        result = asyncio.run(driver_rate(profile, ports, args.switches, args.duration))
    finally:
        for sim in sims:
            sim.terminate()
    points = len(profile.points)
    needed = args.switches * points / args.interval_s
    result |= {
        "switches": args.switches, "points_per_switch": points, "simulators": args.sims,
        "snmpbulkwalk_values_per_s": round(limit),
        "ratio_to_snmpbulkwalk": round(result["driver_readings_per_s"] / limit, 3),
        "needed_readings_per_s": round(needed),
        "needed_cores": round(needed * result["driver_cpu_us_per_reading"] / 1e6, 3),
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(result, indent=2))
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
