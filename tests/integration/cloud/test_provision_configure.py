""""Provision and configure" as one job: a server in the lab, then the edge-gateway playbook
on the host mapped to it, until the agent reports online to the broker."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid

import paho.mqtt.client as paho
from fastapi.testclient import TestClient

from api.main import create_app
from cityops import wire
from cityops.principal import Role
from tests.api_kit import bearer
from tests.conftest import BrokerFixture
from tests.helpers import wait_for


def _watch_status(broker: BrokerFixture, gateway: str) -> tuple[paho.Client, dict]:
    seen: dict = {}
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5,
                         client_id=f"watch-{uuid.uuid4().hex[:6]}")
    client.username_pw_set("svc-ingest", broker.passwords["svc-ingest"])
    client.on_message = lambda _c, _u, msg: seen.update(json.loads(msg.payload))
    client.connect("127.0.0.1", broker.broker.port)
    client.subscribe(wire.status_topic(gateway), qos=1)
    client.loop_start()
    return client, seen


def test_provision_and_configure_gives_a_running_agent(
    cloud_settings, worker, ssh_hosts, broker: BrokerFixture, wheelhouse, project
) -> None:
    [target] = ssh_hosts(1)
    gateway = f"gw-{uuid.uuid4().hex[:6]}"
    with TestClient(create_app(cloud_settings)) as api:
        # a user that exists: the API reads its state on each request
        api.headers.update(bearer(cloud_settings, Role.OPS_ENGINEER, "ops-li"))
        for path, body in (("/v1/cloud/projects", {"name": project, "quotas": {"cores": 4}}),
                           ("/v1/cloud/networks", {"project": project, "name": "net"})):
            url = api.post(path, json=body).json()["url"]
            wait_for(lambda u=url: api.get(u).json()["state"] == "succeeded", timeout_s=120,
                     what=path)
        client, seen = _watch_status(broker, gateway)
        started = time.monotonic()
        res = api.post("/v1/cloud/provisionings", json={
            "server": {"project": project, "name": "edge-1", "flavor": "m1.tiny",
                       "image": "cirros", "network": "net",
                       "metadata": {"cityops_ssh": f"127.0.0.1:{target.host.port}",
                                    "cityops_prefix": str(target.prefix),
                                    "cityops_gateway": gateway}},
            "playbook": "edge_gateway.yml"})
        assert res.status_code == 202, res.text
        job = wait_for(lambda: (j := api.get(res.json()["url"]).json())["state"]
                       in ("succeeded", "failed") and j, timeout_s=300, what="the job")
        assert job["state"] == "succeeded", job["detail"]
        # provisioning made the gateway's registry row with its broker account (#13, 13)
        assert api.get(f"/v1/gateways/{gateway}").status_code == 200
        wait_for(lambda: seen.get("state") == "online", timeout_s=60,
                 what="the agent to report online")
        elapsed = time.monotonic() - started
        client.loop_stop()
        client.disconnect()
    hosts = {e["host"] for e in job["events"] if e["host"]}
    assert hosts == {"edge-1"}, "Ansible's per-host events are recorded on the job"
    assert job["result"]["server"]["status"] == "ACTIVE"
    pid_file = target.prefix / f"run/cityops/cityops-agent-{gateway}.pid"
    assert pid_file.exists()
    # the agent is a daemon of the "host": stop it, or it outlives the test run
    os.kill(int(pid_file.read_text()), signal.SIGTERM)
    password_file = target.prefix / f"etc/cityops/{gateway}.password"
    assert oct(password_file.stat().st_mode)[-3:] == "600"
    password = password_file.read_text()
    assert len(password) >= 20
    # the secret the worker issued reached the host, and nothing else: no event, no log
    assert all(password not in (e["message"] or "") for e in job["events"])
    assert password not in worker.log("worker")
    print(f"provision and configure to a running agent: {elapsed:.1f} s")
