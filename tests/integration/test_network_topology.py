"""The network page's API (issue 20 item 2) on the real database: three network devices whose
latest values are written as ingestion keeps them (the point here is the derivation, not the
SNMP path: tests/integration/test_snmp_agent.py covers that), a link found by LLDP from both
ends (kept once), a link declared by a field technician, utilisation, a down port with its
alarm; roles, department decisions, bad input and audit of the declared links."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from cityops.principal import Role
from cityops.settings import Settings
from tests.api_kit import api_settings, bearer, ok, unique
from tests.conftest import BrokerFixture

# three boxes: two switches (port<N>) and a router (if<N>) without LLDP
_PORTS = {
    "a": {"port1": {"name": "Gi0/1", "oper_up": True, "admin_up": True, "speed_mbps": 1000,
                    "in_bps": 4e8, "out_bps": 1e8, "neighbor": "{b}.core",
                    "neighbor_port": "Gi0/2"},
          "port2": {"name": "Gi0/2", "oper_up": False, "admin_up": False, "speed_mbps": 1000,
                    "neighbor": "", "neighbor_port": ""},
          "port3": {"name": "Gi0/3", "oper_up": False, "admin_up": True, "speed_mbps": 100,
                    "in_bps": 0.0, "out_bps": 0.0, "neighbor": "", "neighbor_port": ""}},
    "b": {"port1": {"name": "Gi0/1", "oper_up": True, "admin_up": True, "speed_mbps": 1000,
                    "neighbor": "", "neighbor_port": ""},
          "port2": {"name": "Gi0/2", "oper_up": True, "admin_up": True, "speed_mbps": 1000,
                    "in_bps": 1e8, "out_bps": 5e8, "neighbor": "{a_title}",
                    "neighbor_port": "1"}},
    "c": {"if1": {"name": "ge-0/0/0", "oper_up": True, "admin_up": True, "speed_mbps": 100,
                  "in_bps": 2.5e7, "out_bps": 1e7}},
}
_TYPES = {bool: "bool", int: "uint32", float: "float64", str: "string"}


def _seed(url: str) -> dict:
    ids = {k: unique(f"net{k}") for k in "abc"}
    # titles of this run only: LLDP matches titles, and other tests add network devices too
    titles = {k: f"Switch {k.upper()} {ids[k][-6:]}" for k in "abc"}
    gateway, profile = unique("gw-net"), unique("t-net")
    status = {"devices": {ids["a"]: "online", ids["b"]: "online", ids["c"]: "online"}}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO profiles (id, protocol, category, body) VALUES"
                     " (%s, 'snmp', 'network', '{}')", (profile,))
        conn.execute("INSERT INTO gateways (id, last_status) VALUES (%s, %s::jsonb)",
                     (gateway, psycopg.types.json.Jsonb(status)))
        for key, device in ids.items():
            conn.execute("INSERT INTO devices (id, title, gateway_id, profile_id) VALUES"
                         " (%s, %s, %s, %s)", (device, titles[key], gateway, profile))
            values = {"sys_name": f"{ids['b']}.core" if key == "b" else "",
                      "links_down": 1 if key == "a" else 0}
            for port, columns in _PORTS[key].items():
                for column, value in columns.items():
                    if isinstance(value, str):
                        value = value.format(b=ids["b"], a_title=titles["a"].casefold())
                    values[f"{port}.{column}"] = value
            for name, value in values.items():
                kind = _TYPES[type(value)]
                point = conn.execute("INSERT INTO points (device_id, name, data_type) VALUES"
                                     " (%s, %s, %s) RETURNING id", (device, name, kind)
                                     ).fetchone()[0]
                conn.execute("INSERT INTO readings_latest (point_id, time, value, text, quality)"
                             " VALUES (%s, now(), %s, %s, 0)",
                             (point, None if kind == "string" else float(value),
                              value if kind == "string" else None))
        conn.execute("INSERT INTO rules (id, kind, severity, body) VALUES ('t-net-port-down',"
                     " 'threshold', 'major', '{}') ON CONFLICT DO NOTHING")
        alarm = conn.execute(
            "INSERT INTO alarms (rule_id, device_id, point_id, severity, state, message)"
            " SELECT 't-net-port-down', device_id, id, 'major', 'active', 'Gi0/3 down'"
            " FROM points WHERE device_id = %s AND name = 'port3.oper_up' RETURNING id",
            (ids["a"],)).fetchone()[0]
    return {**ids, "alarm": alarm}


@pytest.fixture(scope="module")
def net(settings: Settings, broker: BrokerFixture):
    url = settings.database_url.get_secret_value()
    with TestClient(create_app(api_settings(settings, broker))) as client:
        yield client, _seed(url), url


def _mine(topology: dict, ids: dict) -> tuple[dict, list]:
    mine = {ids[k] for k in "abc"}
    nodes = {n["id"]: n for n in topology["nodes"] if n["id"] in mine}
    links = [x for x in topology["links"] if x["a"]["device"] in nodes]
    return nodes, links


def test_topology_from_lldp_and_declared_links(net: tuple, settings: Settings) -> None:
    client, ids, url = net
    operator = bearer(settings, Role.OPERATOR)
    nodes, links = _mine(ok(client.get("/v1/network/topology", headers=operator)), ids)
    assert nodes[ids["a"]]["status"] == "degraded" and nodes[ids["b"]]["status"] == "ok"
    assert [x["source"] for x in links] == ["lldp"]  # both ends' LLDP: one link
    lldp = links[0]
    assert {(lldp["a"]["device"], lldp["a"]["port"]), (lldp["b"]["device"], lldp["b"]["port"])} \
        == {(ids["a"], "port1"), (ids["b"], "port2")}
    assert lldp["utilisation"] == pytest.approx(0.5) and lldp["down"] is False

    tech = bearer(settings, Role.FIELD_TECHNICIAN)
    body = {"device_a": ids["a"], "port_a": "port3", "device_b": ids["c"], "port_b": "if1",
            "note": "uplink to the county router"}
    assert client.post("/v1/network/links", json=body, headers=operator).status_code == 403
    link = ok(client.post("/v1/network/links", json=body, headers=tech), 201)
    again = client.post("/v1/network/links", json={**body, "port_a": "port2"}, headers=tech)
    assert again.status_code == 409 and "if1" in again.json()["detail"]
    wrong = client.post("/v1/network/links", json={**body, "port_b": "if9"}, headers=tech)
    assert wrong.status_code == 422 and "device_b" in wrong.json()["detail"]

    topology = ok(client.get("/v1/network/topology", headers=operator))
    nodes, links = _mine(topology, ids)
    declared = next(x for x in links if x["source"] == "declared")
    assert declared["id"] == link["id"] and declared["down"] is True
    assert declared["a"]["utilisation"] == 0 and declared["b"]["utilisation"] == pytest.approx(
        0.25)
    down = [d for d in topology["down_ports"] if d["device"] == ids["a"]]
    assert [d["port"] for d in down] == ["port3"]  # port2 is disabled: not down
    assert [a["id"] for a in down[0]["alarms"]] == [ids["alarm"]]

    ports = ok(client.get(f"/v1/network/devices/{ids['a']}/ports", headers=tech))
    by_port = {p["port"]: p for p in ports["ports"]}
    assert list(by_port) == ["port1", "port2", "port3"]
    assert by_port["port1"]["utilisation"] == pytest.approx(0.4)
    assert by_port["port3"]["down"] and by_port["port3"]["alarms"][0]["message"] == "Gi0/3 down"
    history = client.get(f"/v1/devices/{ids['a']}/readings",  # the port's history route
                         params={"point": "port1.in_bps", "bucket": "1m"}, headers=operator)
    assert history.status_code == 200, history.text

    assert ok(client.delete(f"/v1/network/links/{link['id']}", headers=tech))["id"] == link["id"]
    assert client.delete(f"/v1/network/links/{link['id']}", headers=tech).status_code == 404
    with psycopg.connect(url) as conn:
        actions = [r[0] for r in conn.execute(
            "SELECT action FROM audit_log WHERE actor = %s AND status < 300 ORDER BY id",
            ("t-field_technician",)).fetchall()]
    assert actions[-2:] == ["POST /v1/network/links", "DELETE /v1/network/links/{link}"]


def test_roles_and_departments(net: tuple, settings: Settings) -> None:
    client, ids, url = net
    for role in (Role.VIEWER, Role.DISPATCHER, Role.DATA_ADMIN):
        assert client.get("/v1/network/topology",
                          headers=bearer(settings, role)).status_code == 403, role
    admin = bearer(settings, Role.ADMIN)
    assert client.get(f"/v1/network/devices/{ids['a']}/ports", headers=admin).status_code == 200
    missing = client.get("/v1/network/devices/no-such-switch/ports", headers=admin)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    dept = unique("dept-net")
    ok(client.post("/v1/departments", json={"id": dept, "name": dept}, headers=admin), 201)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE devices SET department_id = %s WHERE id = %s", (dept, ids["c"]))
    security = bearer(settings, "security_admin")  # keys: 三员分立
    key = {"X-API-Key": ok(client.post("/v1/api-keys", headers=security, json={
        "name": unique("net-key"), "role": "ops_engineer", "routes": ["* /v1/*"],
        "departments": [dept]}), 201)["key"]}
    nodes, links = _mine(ok(client.get("/v1/network/topology", headers=key)), ids)
    assert set(nodes) == {ids["c"]} and links == []  # the switches are of no department
    assert client.get(f"/v1/network/devices/{ids['a']}/ports", headers=key).status_code == 403
    assert ok(client.get(f"/v1/network/devices/{ids['c']}/ports", headers=key))["ports"][0][
        "name"] == "ge-0/0/0"
    refused = client.post("/v1/network/links", headers=key, json={
        "device_a": ids["c"], "port_a": "if1", "device_b": ids["b"], "port_b": "port1"})
    assert refused.status_code == 403 and "device_b" in refused.json()["detail"]
    assert all(ids["c"] in (x["device_a"], x["device_b"])
               for x in ok(client.get("/v1/network/links", headers=key)))
