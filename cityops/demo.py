"""`cityops demo`: the platform on one machine with simulated devices, stopped by Ctrl-C."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from cityops.children import (
    block_stop_signals,
    start_child,
    stop_children,
    stop_with_parent,
    wait_for_stop,
)
from cityops.errors import Conflict, StackError
from cityops.settings import load_settings

EXAMPLE = Path(__file__).parents[1] / "edge_agents" / "examples" / "demo-gateway.yaml"
LAB_STATE_DEFAULT = "/var/lib/cityops-openstack-lab"


def _free_port(preferred: int, kind: int = socket.SOCK_STREAM) -> int:
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise StackError("no free port")


def _secret(path: Path, make: callable) -> str:  # type: ignore[valid-type]
    if path.exists():
        return path.read_text().strip()
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value)
    path.chmod(0o600)
    return value


def _gateway_password(state_dir: Path, demo_dir: Path) -> str:
    from infra.broker.accounts import add_gateway, revoke_gateway
    from infra.local.stack import broker_for

    path = demo_dir / "gw-demo.password"
    try:
        password = add_gateway(state_dir / "broker", "gw-demo")
    except Conflict:
        if path.exists():
            return path.read_text().strip()
        revoke_gateway(state_dir / "broker", "gw-demo")
        password = add_gateway(state_dir / "broker", "gw-demo")
    path.write_text(password)
    path.chmod(0o600)
    broker = broker_for(state_dir)
    broker.write_config()
    broker.reload()
    return password


def _wait_port(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise StackError(f"nothing answers on port {port}")


def run_demo() -> None:
    from infra.db.migrate import migrate
    from infra.local.stack import state_dir_from_env, up

    up(state_dir_from_env())  # idempotent: quick when the stack is installed and running
    settings = load_settings()
    migrate(settings.database_url.get_secret_value())
    state_dir = settings.state_dir.absolute()
    demo_dir = state_dir / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    api_port = _free_port(settings.api_port)
    # HTTPS (stack up's default): the plain port only redirects; another demo may hold it
    redirect_port = _free_port(settings.api_http_redirect_port or 0) if (
        settings.api_tls_cert_file) else 0
    config = yaml.safe_load(EXAMPLE.read_text())
    config["queue"]["path"] = str(demo_dir / "gw-demo.queue.db")
    # a gateway's listener (passwords), not the services' (certificates; docs/operations.md)
    config["broker"]["url"] = settings.gateway_mqtt_url or settings.mqtt_url
    sims = _simulators(config)
    config_path = demo_dir / "gw-demo.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    password = _gateway_password(state_dir, demo_dir)
    admin_password = _secret(demo_dir / "admin.password", lambda: secrets.token_urlsafe(12))
    cityops = [sys.executable, "-m", "cli"]
    subprocess.run([*cityops, "registry", "load", str(config_path)], check=True)
    subprocess.run([*cityops, "users", "add", "admin", "--role", "admin"],
                   input=admin_password + "\n", text=True, check=True)
    _load_economy(cityops, demo_dir)
    subprocess.run([*cityops, "map", "seed-demo"], check=True)  # 濉溪县 on the map
    subprocess.run([*cityops, "indicators", "load"], check=True)  # the starter 指标体系
    block_stop_signals()
    stop_with_parent()
    procs: list[subprocess.Popen] = []
    try:
        _start_all(procs, cityops, config_path, sims, api_port, password, demo_dir,
                   redirect_port)
        _wait_port(api_port)
        _announce(settings.model_copy(update={"api_port": api_port}), admin_password, demo_dir)
        wait_for_stop()
    finally:
        stop_children(procs)
        sys.stdout.write("demo stopped\n")


def _load_economy(cityops: list[str], demo_dir: Path) -> None:
    """The industrial-economy panel's demo data, generated and imported once."""
    done = demo_dir / "economy.csv"
    if done.exists():
        return
    pending = demo_dir / "economy.csv.pending"
    subprocess.run([*cityops, "economy", "generate", "--out", str(pending)], check=True)
    subprocess.run([*cityops, "economy", "import", str(pending)], check=True)
    pending.rename(done)


def _simulators(config: dict) -> dict[str, tuple[list[str], int]]:
    """One simulator per endpoint of the example (Modbus unit ids share one), each on a free
    port written back into the config: {name: (sim arguments, port)}."""
    sims: dict[str, tuple[list[str], int]] = {}
    by_endpoint: dict[str, tuple[str, int]] = {}
    for device in config["devices"]:
        endpoint = device["endpoint"]
        if endpoint.get("protocol") in ("snmp", "onvif"):
            sims.update(_network_and_video_sim(device))
            continue
        if endpoint.get("protocol") == "opcua":
            key = endpoint["url"]
            if key not in by_endpoint:
                by_endpoint[key] = (f"sim-{device['id']}", _free_port(0))
                sims[by_endpoint[key][0]] = (["opcua", "--profile", device["profile"]],
                                             by_endpoint[key][1])
            endpoint["url"] = f"opc.tcp://127.0.0.1:{by_endpoint[key][1]}/cityops/"
            continue
        key = f"modbus:{endpoint['port']}"
        if key not in by_endpoint:
            by_endpoint[key] = (f"sim-{device['id']}", _free_port(endpoint["port"]))
            sims[by_endpoint[key][0]] = (["modbus", "--profile", device["profile"],
                                          "--count", "1"], by_endpoint[key][1])
        name, port = by_endpoint[key]
        args = sims[name][0]
        args[-1] = str(max(int(args[-1]), endpoint.get("unit_id", 1)))  # units 1..count
        endpoint["port"] = port
    return sims


def _network_and_video_sim(device: dict) -> dict[str, tuple[list[str], int]]:
    """An SNMP agent (UDP) or an ONVIF camera (HTTP) of its own for the device."""
    endpoint = device["endpoint"]
    if endpoint["protocol"] == "snmp":
        endpoint["port"] = _free_port(endpoint["port"], socket.SOCK_DGRAM)
        return {f"sim-{device['id']}": (["snmp", "--profile", device["profile"]],
                                        endpoint["port"])}
    endpoint["port"] = _free_port(endpoint["port"])
    return {f"sim-{device['id']}": (["onvif", "--name", device["id"]], endpoint["port"])}


def _device_secrets(demo_dir: Path) -> dict[str, str]:
    """The simulated switch's community and camera's password: the agent reads them from the
    variables its config names, the simulators from theirs."""
    community = _secret(demo_dir / "snmp.community", lambda: secrets.token_urlsafe(12))
    camera = _secret(demo_dir / "camera.password", lambda: secrets.token_urlsafe(12))
    return {"CITYOPS_DEMO_SNMP_COMMUNITY": community, "CITYOPS_SIM_COMMUNITY": community,
            "CITYOPS_DEMO_CAMERA_PASSWORD": camera, "CITYOPS_SIM_PASSWORD": camera}


def _start_all(procs: list[subprocess.Popen], cityops: list[str], config: Path,
               sims: dict[str, tuple[list[str], int]], api_port: int, password: str,
               demo_dir: Path, redirect_port: int = 0) -> None:
    """Start every process into `procs` as it goes, so a failure half-way still stops
    the ones already started."""
    env = os.environ | _device_secrets(demo_dir) | {
        "CITYOPS_GATEWAY_PASSWORD": password, "CITYOPS_API_HTTP_REDIRECT_PORT": str(redirect_port)}
    lab_clouds = Path(env.get("CITYOPS_LAB_STATE", LAB_STATE_DEFAULT)) / "clouds.yaml"
    if lab_clouds.is_file() and "CITYOPS_CLOUDS_YAML" not in env:
        env["CITYOPS_CLOUDS_YAML"] = str(lab_clouds)  # `make demo` started the lab
    commands = {
        **{name: ["sim", *args, "--port", str(port)] for name, (args, port) in sims.items()},
        "agent": ["agent", "--config", str(config)],
        "ingest": ["ingest"],
        "api": ["api", "--port", str(api_port)],
        "worker": ["worker"],
        "events": ["events", "watch"],  # alarms of mapped rules open city events
        # 数据汇聚: a department's MariaDB changing over time, and the worker syncing it
        "departments": ["sim", "departments"],
        "sync-worker": ["sync", "worker"],
        # 指标体系: each indicator's period computed as it ends, reports when a week or month
        # ends; notifications to whatever channels people subscribe
        "indicators": ["indicators", "worker"],
        "notify": ["notify", "worker"],
    }
    for name, args in commands.items():
        procs.append(start_child([*cityops, *args], env, demo_dir / f"{name}.log"))
        if name in sims and sims[name][0][0] != "snmp":  # SNMP is UDP: nothing to connect to
            _wait_port(sims[name][1])


def _announce(settings, admin_password: str, demo_dir: Path) -> None:
    from cityops.tls import api_base_url

    base = api_base_url(settings)
    trust = (f"  Certificate:    of the local CA {settings.api_ca_file}: import it into the "
             "browser once" if settings.api_ca_file and base.startswith("https") else "")
    lines = [
        "", "CityOps demo is running.",
        f"  Console:        {base}/   (log in as admin / {admin_password})",
        *([trust] if trust else []),
        f"  Video wall:     {base}/?wall=1   (the big screen without the menu bar)",
        f"  Health:         {base}/v1/health",
        f"  API docs:       {base}/docs",
        f"  Cloud (lab):    {base}/v1/cloud/inventory   (jobs: POST /v1/cloud/...)",
        f"  Logs:           {demo_dir}/*.log",
        "Press Ctrl-C to stop everything the demo started.", "",
    ]
    sys.stdout.write("\n".join(lines))
    sys.stdout.flush()
