"""How much an agent logs at INFO against a quiet OPC-UA device, with asyncua at INFO (as
before CITYOPS_LOG_LEVELS existed) and with the default (libraries at WARNING).

`make bench-agent-logs` (no services: the agent's broker address answers nothing, which adds
a few reconnect lines to both runs alike). Prints bytes per minute and MB per day of each run
after a warm-up, and their ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tests.helpers import free_port, port_open, wait_for

REPO = Path(__file__).parents[1]


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def measure(levels: str, seconds: float, warmup_s: float, tmp: Path) -> int:
    """Bytes the agent logged in `seconds` after `warmup_s`, with CITYOPS_LOG_LEVELS=levels."""
    port = free_port()
    config = tmp / "gw.yaml"
    config.write_text(yaml.safe_dump({
        "gateway": "gw-logs", "broker": {"url": "mqtt://127.0.0.1:1"},
        "queue": {"path": str(tmp / "queue.db")},
        "devices": [{"id": "wall", "profile": "av/video_wall", "endpoint": {
            "protocol": "opcua", "url": f"opc.tcp://127.0.0.1:{port}/cityops/"}}]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYOPS_")}
    env |= {"CITYOPS_ENV_FILE": "/nonexistent", "CITYOPS_STATE_DIR": str(tmp),
            "CITYOPS_GATEWAY_PASSWORD": "unused"}
    sim = _start(["sim", "opcua", "--profile", "av/video_wall", "--port", str(port)], env,
                 tmp / "sim.log")
    log = tmp / "agent.log"
    agent = None
    try:
        wait_for(lambda: port_open(port), timeout_s=60, what="the simulator")
        agent = _start(["agent", "--config", str(config)],
                       env | {"CITYOPS_LOG_LEVEL": "INFO", "CITYOPS_LOG_LEVELS": levels}, log)
        time.sleep(warmup_s)  # start-up lines are not the steady rate
        before = log.stat().st_size
        time.sleep(seconds)
        return log.stat().st_size - before
    finally:
        for proc in (agent, sim):
            if proc is not None:
                proc.terminate()
                proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=8)
    args = parser.parse_args()
    results = {}
    for name, levels in (("asyncua at INFO", '{"asyncua": "INFO"}'), ("default", "{}")):
        with tempfile.TemporaryDirectory() as tmp:
            size = measure(levels, args.seconds, args.warmup, Path(tmp))
        results[name] = size
        print(f"{name}: {size} bytes in {args.seconds:.0f} s = "
              f"{size / args.seconds * 60:.0f} bytes/min = "
              f"{size / args.seconds * 86400 / 1e6:.1f} MB/day")
    old, new = results["asyncua at INFO"], results["default"]
    print(f"ratio default / asyncua at INFO: {new / old:.4f}" if old else "no output at all")


if __name__ == "__main__":
    main()
