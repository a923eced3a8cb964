"""Playbooks against real sshd hosts: their effects on the hosts, failures, and no secrets."""

from __future__ import annotations

import os
import pwd
import subprocess
import uuid
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from cityops import wire
from cityops.errors import PlaybookFailed
from cloud_control.playbooks import Host, HostEvent, run_playbook
from tests.conftest import BrokerFixture, Processes
from tests.helpers import free_port, port_open, wait_for


def test_hardening_writes_ssh_and_time_settings_and_admin_users(ssh_hosts, ssh_client_key):
    [target] = ssh_hosts(1)
    admin = f"ops{uuid.uuid4().hex[:6]}"
    key = ssh_client_key.with_suffix(".pub").read_text().strip()
    events: list[HostEvent] = []
    try:
        result = run_playbook(
            "hardening.yml", [target.host],
            {"hardening_admins": [{"name": admin, "ssh_key": key}],
             "hardening_manage_packages": False, "hardening_ntp_servers": ["ntp.example.cn"]},
            ssh_client_key.read_text(), events.append,
        )
        result.raise_for_failure("hardening.yml")
        sshd = (target.prefix / "etc/ssh/sshd_config.d/50-cityops-hardening.conf").read_text()
        assert "PasswordAuthentication no" in sshd
        assert "PermitRootLogin prohibit-password" in sshd
        sources = (target.prefix / "etc/chrony/sources.d/cityops.sources").read_text()
        assert "server ntp.example.cn iburst" in sources
        home = Path(pwd.getpwnam(admin).pw_dir)
        assert (home / ".ssh/authorized_keys").read_text().strip() == key
        assert oct((home / ".ssh/authorized_keys").stat().st_mode)[-3:] == "600"
        assert any(e.status == "changed" for e in events)
        # a second run changes nothing: the roles are idempotent
        events.clear()
        run_playbook("hardening.yml", [target.host],
                     {"hardening_admins": [{"name": admin, "ssh_key": key}],
                      "hardening_manage_packages": False,
                      "hardening_ntp_servers": ["ntp.example.cn"]},
                     ssh_client_key.read_text(), events.append).raise_for_failure("again")
        assert not [e for e in events if e.status == "changed"]
    finally:
        subprocess.run(["userdel", "-r", admin], capture_output=True, check=False)


def _telemetry_seen(broker: BrokerFixture, gateway: str, timeout_s: float) -> dict:
    got: dict = {}
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5,
                         client_id=f"watch-{uuid.uuid4().hex[:6]}")
    client.username_pw_set("svc-ingest", broker.passwords["svc-ingest"])
    client.on_message = lambda _c, _u, msg: got.setdefault("payload", msg.payload)
    client.connect("127.0.0.1", broker.broker.port)
    client.subscribe(wire.telemetry_topic(gateway), qos=1)
    client.loop_start()
    try:
        wait_for(lambda: "payload" in got, timeout_s=timeout_s, what="telemetry from the gateway")
    finally:
        client.loop_stop()
        client.disconnect()
    return got


def test_edge_gateway_playbook_installs_and_starts_a_publishing_agent(
    ssh_hosts, ssh_client_key, wheelhouse, broker: BrokerFixture, processes: Processes
) -> None:
    [target] = ssh_hosts(1)
    gateway, sim_port = f"gw-{uuid.uuid4().hex[:6]}", free_port()
    processes.start("sim", "sim", "modbus", "--profile", "power/power_meter",
                    "--port", str(sim_port))
    wait_for(lambda: port_open(sim_port), what="simulator")
    password = broker.add_gateway(gateway)
    config = {"broker": {"url": broker.url}, "queue": {"path": "set-by-role"},
              "devices": [{"id": f"{gateway}-m1", "profile": "power/power_meter",
                           "poll_interval_s": 0.5,
                           "endpoint": {"host": "127.0.0.1", "port": sim_port}}]}
    events: list[HostEvent] = []
    result = run_playbook(
        "edge_gateway.yml", [Host(**{**target.host.__dict__, "groups": ("edge_gateways",)})],
        {"gateway_id": gateway, "gateway_password": password, "edge_agent_config": config,
         "cityops_wheelhouse_archive": str(wheelhouse)},
        ssh_client_key.read_text(), events.append,
    )
    result.raise_for_failure("edge_gateway.yml")
    etc = target.prefix / "etc/cityops"
    assert oct((etc / f"{gateway}.password").stat().st_mode)[-3:] == "600"
    assert (etc / f"{gateway}.password").read_text() == password
    pid = int((target.prefix / f"run/cityops/cityops-agent-{gateway}.pid").read_text())
    assert Path(f"/proc/{pid}").exists(), "the agent runs"
    assert _telemetry_seen(broker, gateway, timeout_s=60)["payload"]
    assert all(password not in e.message for e in events), "no secret in the event stream"
    os.kill(pid, 15)


def test_a_failing_host_is_reported_with_its_task_and_message(ssh_hosts, ssh_client_key):
    [good] = ssh_hosts(1)
    dead = Host(name="dead", address="127.0.0.1", port=free_port(), groups=("edge_gateways",))
    good_host = Host(**{**good.host.__dict__, "groups": ("edge_gateways",)})
    result = run_playbook(
        "edge_gateway.yml", [good_host, dead],
        {"gateway_id": "gw-x", "gateway_password": "s3cret-never-logged",
         "edge_agent_config": {}, "cityops_wheelhouse_archive": "/nonexistent/wheels.tar.gz"},
        ssh_client_key.read_text(),
    )
    assert set(result.failed_hosts) == {"dead", good.host.name}
    assert result.failed_hosts["dead"].status == "unreachable"
    assert result.failed_hosts[good.host.name].task == "Wheelhouse"
    assert "nonexistent" in result.failed_hosts[good.host.name].message
    with pytest.raises(PlaybookFailed, match="Wheelhouse"):
        result.raise_for_failure("edge_gateway.yml")
