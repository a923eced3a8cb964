"""The demo's gateway config: every device gets a simulator of its own protocol on a free
port, and the agent's config validates with the ports filled in."""

from __future__ import annotations

import socket

import yaml

from cityops.demo import EXAMPLE, _device_secrets, _simulators
from edge_agents.config import load_agent_config


def test_every_endpoint_gets_a_simulator_of_its_protocol(tmp_path, monkeypatch) -> None:
    config = yaml.safe_load(EXAMPLE.read_text())
    sims = _simulators(config)
    kinds = {args[0] for args, _port in sims.values()}
    assert kinds == {"modbus", "opcua", "snmp", "onvif"}
    by_device = {d["id"]: d["endpoint"] for d in config["devices"]}
    assert sims["sim-sw-01"] == (["snmp", "--profile", "network/snmp_switch"],
                                 by_device["sw-01"]["port"])
    assert sims["sim-cam-01"][1] == by_device["cam-01"]["port"]
    # the switch's port is free for UDP (the simulator binds it), the others for TCP
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", by_device["sw-01"]["port"]))
    ports = [port for _args, port in sims.values()]
    assert len(ports) == len(set(ports))
    secrets = _device_secrets(tmp_path)
    assert secrets == _device_secrets(tmp_path)  # made once, then read back
    assert secrets["CITYOPS_SIM_COMMUNITY"] == secrets["CITYOPS_DEMO_SNMP_COMMUNITY"]
    assert oct((tmp_path / "camera.password").stat().st_mode)[-3:] == "600"
    # the agent's own check at start: every profile loads, every secret it names is set
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    config["queue"]["path"] = str(tmp_path / "q.db")
    (tmp_path / "gw.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    loaded = load_agent_config(tmp_path / "gw.yaml", check_secrets=True)
    assert loaded.profiles["cam-01"].protocol == "onvif"
