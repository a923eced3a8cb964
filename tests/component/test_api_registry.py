"""Registry and onboarding through the API, in-process, against the real database and the
test broker: gateways get working credentials and a retained config, devices get points,
CSV imports are all or nothing, revoking cuts a gateway off, every write is audited."""

from __future__ import annotations

import queue

import orjson
import paho.mqtt.client as paho
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from cityops import wire
from cityops.settings import Settings
from tests.api_kit import (
    METER_PROFILE,
    api_settings,
    bearer,
    ensure_profile,
    ok,
    register_device,
    register_gateway,
    unique,
)
from tests.conftest import BrokerFixture
from tests.helpers import wait_for


@pytest.fixture(scope="module")
def client(settings: Settings, broker: BrokerFixture):
    with TestClient(create_app(api_settings(settings, broker))) as c:
        yield c


@pytest.fixture
def tech(settings: Settings) -> dict[str, str]:
    return bearer(settings, "field_technician", "t-tech")


class Gateway:
    """A gateway's MQTT session with the credentials the API issued."""

    def __init__(self, broker: BrokerFixture, username: str, password: str) -> None:
        self.messages: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self.connacks: queue.Queue = queue.Queue()
        self.disconnected = False
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id=wire.gateway_client_id(username),
                                  protocol=paho.MQTTv5)
        self.client.username_pw_set(username, password)
        self.client.on_connect = lambda _c, _u, _f, rc, _p: self.connacks.put(rc)
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.on_disconnect = lambda *_a: setattr(self, "disconnected", True)
        self.client.connect("127.0.0.1", broker.broker.port)
        self.client.loop_start()

    def refused(self) -> bool:
        return self.connacks.get(timeout=10).is_failure

    def config(self, gateway: str, version: int) -> dict:
        """The retained config, once it has reached `version`."""
        self.client.subscribe(wire.config_topic(gateway), qos=1)
        while True:
            body = orjson.loads(self.messages.get(timeout=10).payload)
            if body["version"] >= version:
                return body

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _login(broker: BrokerFixture, user: str, password: str) -> Gateway:
    """The broker applies new accounts a moment after its SIGHUP: retry until it knows."""
    def attempt() -> Gateway | None:
        gw = Gateway(broker, user, password)
        if gw.refused():
            gw.close()
            return None
        return gw
    return wait_for(attempt, timeout_s=10, what=f"{user} to log in")


def test_sites_departments_and_pages(client: TestClient, tech: dict) -> None:
    ids = [unique("site") for _ in range(3)]
    for site in ids:
        ok(client.post("/v1/sites", json={"id": site, "name": site.upper()}, headers=tech), 201)
    dup = client.post("/v1/sites", json={"id": ids[0], "name": "again"}, headers=tech)
    assert dup.status_code == 409 and dup.json()["code"] == "conflict"
    first = ok(client.get("/v1/sites", params={"limit": 2}, headers=tech))
    second = ok(client.get("/v1/sites", params={"limit": 2, "offset": 2}, headers=tech))
    assert first["total"] >= 3 and len(first["items"]) == 2
    assert not {s["id"] for s in first["items"]} & {s["id"] for s in second["items"]}
    bad = client.post("/v1/departments", json={"id": "Bad Id", "name": "x"}, headers=tech)
    assert bad.status_code == 422 and "id" in bad.json()["detail"]


def test_profiles_are_validated(client: TestClient, tech: dict) -> None:
    ensure_profile(client, tech)
    got = ok(client.get(f"/v1/profiles/{METER_PROFILE['model']}", headers=tech))
    assert {p["name"] for p in got["body"]["points"]} == {"voltage", "limit_kw", "breaker_closed"}
    broken = {**METER_PROFILE, "model": unique("p"), "points": [
        {"name": "x", "data_type": "float32", "address": {"table": "coil", "offset": 0}}]}
    res = client.post("/v1/profiles", json=broken, headers=tech)
    assert res.status_code == 422 and "points.0" in res.json()["detail"]


def test_gateway_gets_credentials_and_a_retained_config(
    client: TestClient, tech: dict, broker: BrokerFixture
) -> None:
    body = register_gateway(client, tech)
    gateway, mqtt = body["gateway"]["id"], body["mqtt"]
    assert mqtt["username"] == gateway and len(mqtt["password"]) >= 32
    assert mqtt["url"] == broker.url
    again = client.post("/v1/gateways", json={"id": gateway}, headers=tech)
    assert again.status_code == 409
    gw = _login(broker, gateway, mqtt["password"])
    try:
        assert gw.config(gateway, 1)["devices"] == []
        device = register_device(client, tech, gateway, latitude=33.9, longitude=116.8)
        config = gw.config(gateway, 2)
        assert [d["id"] for d in config["devices"]] == [device["id"]]
        assert config["devices"][0]["endpoint"]["unit_id"] == 1
        assert "t-meter" in config["profiles"]
    finally:
        gw.close()
    points = ok(client.get(f"/v1/devices/{device['id']}/points", headers=tech))
    assert {p["name"]: p["writable"] for p in points} == {
        "breaker_closed": True, "limit_kw": True, "voltage": False}
    listed = ok(client.get("/v1/devices", params={"gateway": gateway}, headers=tech))
    assert listed["total"] == 1 and listed["items"][0]["latitude"] == 33.9


def test_device_checks(client: TestClient, tech: dict) -> None:
    gateway = register_gateway(client, tech)["gateway"]["id"]
    profile = ensure_profile(client, tech)
    base = {"id": unique("dev"), "gateway": gateway, "profile": profile,
            "address": {"host": "10.0.0.9", "port": 502, "unit_id": 3}}
    cases = [
        ({"gateway": "no-such-gw"}, "gateway 'no-such-gw' is not registered"),
        ({"profile": "no-such-profile"}, "profile 'no-such-profile' is not registered"),
        ({"address": {"host": "10.0.0.9", "unit_id": 999}}, "address.unit_id"),
        ({"latitude": 91}, "latitude"),
        ({"site": "no-such-site"}, "site 'no-such-site' is not registered"),
    ]
    for change, expected in cases:
        res = client.post("/v1/devices", json={**base, **change}, headers=tech)
        assert res.status_code == 422, (change, res.text)
        assert expected in res.json()["detail"], (change, res.json())
    ok(client.post("/v1/devices", json=base, headers=tech), 201)
    assert client.post("/v1/devices", json=base, headers=tech).status_code == 409
    moved = ok(client.patch(f"/v1/devices/{base['id']}", json={"title": "Pump 3"},
                            headers=tech))
    assert moved["title"] == "Pump 3" and moved["gateway"] == gateway
    assert client.delete(f"/v1/devices/{base['id']}", headers=tech).status_code == 204
    assert client.get(f"/v1/devices/{base['id']}", headers=tech).status_code == 404


def test_csv_import_is_all_or_nothing(client: TestClient, tech: dict) -> None:
    gateway = register_gateway(client, tech)["gateway"]["id"]
    profile = ensure_profile(client, tech)
    ids = [unique("csv") for _ in range(3)]
    head = "id,gateway,profile,latitude,address.host,address.port,address.unit_id\n"
    good = [f"{ids[0]},{gateway},{profile},33.9,10.0.0.1,502,1",
            f"{ids[1]},{gateway},{profile},,10.0.0.1,502,2"]
    bad = [f"{ids[2]},{gateway},nope,,10.0.0.1,502,3", f"{ids[0]},{gateway},{profile},,x,1,1"]
    res = client.post("/v1/devices/import", content=head + "\n".join(good + bad),
                      headers={**tech, "Content-Type": "text/csv"})
    assert res.status_code == 422, res.text
    report = res.json()
    assert report["code"] == "invalid_input" and "2 of 4 rows" in report["detail"]
    # numbered as a spreadsheet shows them: the header is row 1
    assert [(r["row"], r["id"]) for r in report["rows"]] == [(4, ids[2]), (5, ids[0])]
    assert "profile 'nope'" in report["rows"][0]["errors"][0]
    assert "appears twice" in report["rows"][1]["errors"][0]
    for device in ids:
        assert client.get(f"/v1/devices/{device}", headers=tech).status_code == 404
    res = client.post("/v1/devices/import", content=head + "\n".join(good),
                      headers={**tech, "Content-Type": "text/csv"})
    assert ok(res, 201) == {"imported": 2, "devices": ids[:2], "encoding": "UTF-8"}
    assert ok(client.get(f"/v1/devices/{ids[1]}", headers=tech))["address"]["unit_id"] == 2


def test_revoking_cuts_the_gateway_off(
    client: TestClient, tech: dict, broker: BrokerFixture
) -> None:
    body = register_gateway(client, tech)
    gateway, password = body["gateway"]["id"], body["mqtt"]["password"]
    gw = _login(broker, gateway, password)
    try:
        revoked = ok(client.post(f"/v1/gateways/{gateway}/revoke", headers=tech))
        assert revoked["revoked_at"] is not None
        wait_for(lambda: gw.disconnected, timeout_s=10, what="the revoked gateway dropped")
    finally:
        gw.close()
    retry = Gateway(broker, gateway, password)
    assert retry.refused()
    retry.close()
    assert client.post(f"/v1/gateways/{gateway}/revoke", headers=tech).status_code == 409
    fresh = ok(client.post(f"/v1/gateways/{gateway}/credentials", headers=tech))
    assert fresh["gateway"]["revoked_at"] is None
    _login(broker, gateway, fresh["mqtt"]["password"]).close()


def test_every_write_is_audited_without_secrets(
    client: TestClient, tech: dict, settings: Settings
) -> None:
    admin = bearer(settings, "admin", "t-auditor")
    gateway = register_gateway(client, tech)
    password = gateway["mqtt"]["password"]
    client.post("/v1/sites", json={"id": "Bad Id", "name": "x"}, headers=tech)
    client.post("/v1/sites", json={"id": unique("s"), "name": "x"})
    user = unique("u")
    ok(client.post("/v1/users", json={"username": user, "password": "sekret-pass-1",
                                      "role": "viewer"}, headers=admin), 201)
    auditor = bearer(settings, "audit_admin")  # the audit log is the auditor's alone
    rows = ok(client.get("/v1/audit", params={"limit": 50}, headers=auditor))["items"]
    mine = next(r for r in rows if r["detail"].get("gateway") == gateway["gateway"]["id"])
    assert (mine["actor"], mine["role"], mine["action"], mine["outcome"], mine["status"]) == (
        "t-tech", "field_technician", "POST /v1/gateways", "ok", 201)
    assert mine["source"] == "testclient"
    assert any(r["outcome"] == "invalid" and r["status"] == 422 for r in rows)
    assert any(r["actor"] == "anonymous" and r["outcome"] == "denied" for r in rows)
    text = orjson.dumps(rows).decode()
    assert password not in text and "sekret-pass-1" not in text
    only = ok(client.get("/v1/audit", params={"actor": "t-auditor"}, headers=auditor))["items"]
    assert only and {r["actor"] for r in only} == {"t-auditor"}
