"""Issue #13 item 10: two deployments (two databases, an API and an ingest worker each) on one
Mosquitto. Every command completes in the database that sent it, and each deployment stores
its own gateways' telemetry and no dead letter of the other's."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator

import httpx
import orjson
import paho.mqtt.client as paho
import psycopg
import pytest
from pydantic import SecretStr

from cityops import wire
from cityops.principal import Role
from cityops.settings import Settings
from infra.db.admin import drop_database
from infra.db.migrate import migrate
from tests.api_kit import bearer, ensure_profile, ok, register_device, register_gateway
from tests.conftest import BrokerFixture, Processes, _with_database, settings_env
from tests.helpers import free_port, port_open, wait_for
from tests.integration.ingest_helpers import Gateway, now_ms, scalar

COMMANDS = 10


@pytest.fixture
def second_database(stack_settings: Settings) -> Iterator[str]:
    admin = stack_settings.database_admin_url.get_secret_value()
    name = f"cityops_test_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(stack_settings.database_url.get_secret_value(), name)
    migrate(url)
    yield url
    drop_database(admin, name)


class Device:
    """A gateway that answers every command at once, as an agent would."""

    def __init__(self, broker: BrokerFixture, gateway: str, password: str) -> None:
        self.gateway = gateway
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5,
                                  client_id=wire.gateway_client_id(gateway))
        self.client.username_pw_set(gateway, password)
        self.client.on_message = self._answer
        self.client.connect("127.0.0.1", broker.broker.port)
        self.client.loop_start()
        self.client.subscribe(f"{wire.TOPIC_ROOT}/{gateway}/commands/+", qos=1)

    def _answer(self, client, _u, msg) -> None:
        command = orjson.loads(msg.payload)
        result = {"status": "succeeded", "readback": command.get("value"),
                  "ts": int(time.time() * 1000)}
        client.publish(wire.command_result_topic(self.gateway, msg.topic.rsplit("/", 1)[1]),
                       orjson.dumps(result), qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def deployment(processes: Processes, settings: Settings, broker: BrokerFixture, name: str,
               database_url: str) -> dict:
    ours = settings.model_copy(update={"database_url": SecretStr(database_url),
                                       "database_admin_url": SecretStr(database_url),
                                       "broker_state_dir": broker.broker.state_dir})
    env = settings_env(ours)
    port = free_port()
    processes.start(f"api-{name}", "api", "--port", str(port), env=env)
    processes.start(f"ingest-{name}", "ingest", env=env | {
        "CITYOPS_STATE_DIR": str(processes.log_dir / name)})  # slots of its own
    wait_for(lambda: port_open(port), timeout_s=30, what=f"api {name}")
    wait_for(lambda: "subscribed" in processes.log(f"ingest-{name}"), what=f"ingest {name}")
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    admin = bearer(ours, Role.ADMIN)
    ensure_profile(client, admin)
    gw = register_gateway(client, admin, f"gw-{name}-{uuid.uuid4().hex[:4]}")
    device = register_device(client, admin, gw["gateway"]["id"])["id"]
    client.headers.update(admin)
    return {"client": client, "gateway": gw["gateway"]["id"], "device": device,
            "password": gw["mqtt"]["password"], "database_url": database_url}


def test_commands_and_telemetry_of_two_deployments_on_one_broker(
    processes: Processes, settings: Settings, broker: BrokerFixture, database_url: str,
    second_database: str
) -> None:
    sides = [deployment(processes, settings, broker, "a", database_url),
             deployment(processes, settings, broker, "b", second_database)]
    devices = [Device(broker, s["gateway"], s["password"]) for s in sides]
    try:
        sent = {i: [ok(s["client"].post(f"/v1/devices/{s['device']}/commands",
                                        json={"point": "limit_kw", "value": 10 + n}), 202)["id"]
                    for n in range(COMMANDS)] for i, s in enumerate(sides)}

        def states(i: int) -> list[str]:
            return [sides[i]["client"].get(f"/v1/commands/{c}").json()["state"]
                    for c in sent[i]]

        for i in range(2):
            wait_for(lambda i=i: all(s == "succeeded" for s in states(i)), timeout_s=30,
                     what=f"every command of deployment {'ab'[i]} succeeded")
    finally:
        for d in devices:
            d.close()
    # telemetry: each deployment stores its own gateway's, and dead-letters nothing of the other
    for side in sides:
        sender = Gateway(broker, side["gateway"], side["password"])
        sender.send([(side["device"], "voltage", now_ms() - 1000, 230.0)])
        sender.close()
    for side in sides:
        wait_for(lambda side=side: scalar(
            side["database_url"], "SELECT count(*) FROM readings r JOIN points p ON"
            " p.id = r.point_id WHERE p.device_id = %s", (side["device"],)) == 1,
            what=f"{side['gateway']}'s reading stored")
    for side, other in zip(sides, sides[::-1], strict=True):
        assert scalar(side["database_url"], "SELECT count(*) FROM dead_letters WHERE topic"
                      " LIKE %s", (f"%/{other['gateway']}/%",)) == 0
