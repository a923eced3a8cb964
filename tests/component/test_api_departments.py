"""The department matrix: every route of the app has a department decision
(api/departments.py), and a caller limited to department B is refused department A's objects,
leaves them out of its lists and cannot write them, while a caller of A gets past the check.

Regression (issue #22, 2): a key of department B sent a command to an A device, acknowledged
an A alarm and read its history, listed A's commands and every gateway, and followed A's
command events on /v1/live.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator

import httpx
import orjson
import psycopg
import pytest
import uvicorn
from fastapi.testclient import TestClient

from api import departments as dep
from api.main import create_app
from cityops.principal import Role
from cityops.settings import Settings
from tests.api_kit import api_settings, bearer, ensure_profile, ok, unique
from tests.conftest import BrokerFixture
from tests.helpers import free_port, wait_for

PUBLIC = {("GET", "/v1/health"), ("POST", "/v1/auth/token"), ("POST", "/v1/auth/refresh"),
          ("POST", "/v1/auth/password")}


@pytest.fixture(scope="module")
def client(settings: Settings, broker: BrokerFixture):
    with TestClient(create_app(api_settings(settings, broker))) as c:
        yield c


def _key(client: TestClient, admin: dict, departments: list[str] | None, role: str = "admin",
         routes: tuple[str, ...] = ("* /v1/*",)) -> dict[str, str]:
    body = {"name": unique("dk"), "role": role, "routes": list(routes),
            "departments": departments}
    security = bearer(client.app.state.settings, "security_admin")  # keys: 三员分立
    return {"X-API-Key": ok(client.post("/v1/api-keys", json=body, headers=security),
                            201)["key"]}


def _department_objects(client: TestClient, admin: dict, dept: str, url: str) -> dict:
    """A gateway, a device, an alarm, a command, an event, a preset and a run, all of `dept`."""
    gateway = unique("gw")
    ok(client.post("/v1/gateways", json={"id": gateway, "name": "t", "department": dept},
                   headers=admin), 201)
    device = ok(client.post("/v1/devices", headers=admin, json={
        "id": unique("dev"), "gateway": gateway, "profile": ensure_profile(client, admin),
        "department": dept, "address": {"host": "127.0.0.1", "port": 1502, "unit_id": 1}}),
        201)["id"]
    preset = unique("preset")
    ok(client.put(f"/v1/presets/{preset}", headers=admin, json={
        "title": "t", "steps": [{"device": device, "point": "limit_kw", "value": 5}]}))
    command, run = uuid.uuid4(), uuid.uuid4()
    step = orjson.dumps([{"device": device, "command": None, "state": "skipped",
                          "detail": ""}]).decode()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO rules (id, kind, severity, body) VALUES (%s, 'threshold',"
                     " 'major', '{}') ON CONFLICT DO NOTHING", ("t-dept-rule",))
        alarm = conn.execute(
            "INSERT INTO alarms (rule_id, device_id, severity, state, message) VALUES"
            " ('t-dept-rule', %s, 'major', 'active', 'high') RETURNING id", (device,)
        ).fetchone()[0]
        conn.execute("INSERT INTO commands (id, device_id, gateway_id, point, value, state,"
                     " created_by, expires_at) VALUES (%s, %s, %s, 'limit_kw', '5', 'sent',"
                     " 't', now() + interval '1 hour')", (command, device, gateway))
        conn.execute("INSERT INTO preset_runs (id, preset, started_by, state, steps) VALUES"
                     " (%s, %s, 't', 'succeeded', %s::jsonb)", (run, preset, step))
        event = conn.execute(
            "INSERT INTO events (channel, reporter, category_code, urgency, description,"
            " state, department_id, reported_at) VALUES ('hotline', 't', 'E01.02', 'normal',"
            " 'd', 'dispatched', %s, now()) RETURNING id", (dept,)).fetchone()[0]
        task = conn.execute(  # a co-handling task (协办) of the department
            "INSERT INTO event_tasks (event_id, department_id, assigned_by, assigned_at, unit,"
            " limit_s, deadline_at, updated_at) VALUES (%s, %s, 't', now(), 'hours', 3600,"
            " now() + interval '1 hour', now()) RETURNING id", (event, dept)).fetchone()[0]
        camera = unique("cam")  # a camera of the map, far from the map tests' places
        conn.execute("INSERT INTO facilities (id, kind, name, department_id, longitude,"
                     " latitude) VALUES (%s, 'camera', %s, %s, 100.0, 20.0)",
                     (camera, camera, dept))
        link = conn.execute(  # a declared network link (two ports of the device will do here)
            "INSERT INTO network_links (device_a, port_a, device_b, port_b, created_by)"
            " VALUES (%s, 'port1', %s, 'port2', 't') RETURNING id", (device, device)
        ).fetchone()[0]
        quality_task = _quality_task(conn, dept)
    return {"gateway": gateway, "device": device, "alarm": str(alarm), "command": str(command),
            "event": str(event), "preset": preset, "preset_run": str(run),
            "event_task": str(task), "event_party": str(event), "camera": camera,
            "network_link": str(link), "quality_task": str(quality_task)}


def _quality_task(conn: psycopg.Connection, dept: str) -> int:
    """A 校核纠错 task of the department (a dataset of its own and one run)."""
    dataset = f"raw_t.{unique('q').replace('-', '_')}"
    conn.execute("INSERT INTO datasets (id, name, layer, department_id) VALUES"
                 " (%s, 'q', 'raw', %s)", (dataset, dept))
    run = conn.execute("INSERT INTO quality.runs (dataset_id, trigger) VALUES (%s, 'manual')"
                       " RETURNING id", (dataset,)).fetchone()[0]
    return conn.execute(
        "INSERT INTO quality.tasks (dataset_id, rule, department_id, failed, due_at,"
        " opened_run_id, last_run_id) VALUES (%s, 'r', %s, 1, now() + interval '1 day', %s,"
        " %s) RETURNING id", (dataset, dept, run, run)).fetchone()[0]


@pytest.fixture(scope="module")
def world(client: TestClient, settings: Settings) -> dict:
    admin = bearer(settings, Role.ADMIN, "t-dept-admin")
    a, b = unique("dept-a"), unique("dept-b")
    for dept in (a, b):
        ok(client.post("/v1/departments", json={"id": dept, "name": dept}, headers=admin), 201)
    url = settings.database_url.get_secret_value()
    return {"admin": admin, "a": a, "b": b, "A": _department_objects(client, admin, a, url),
            "B": _department_objects(client, admin, b, url),
            "key_a": _key(client, admin, [a]), "key_b": _key(client, admin, [b]),
            "staff_b": bearer(settings, Role.DEPARTMENT_STAFF, "t-staff-b", b), "url": url}


def _operations(client: TestClient) -> list[tuple[str, str, dict]]:
    doc = client.get("/openapi.json").json()
    return [(method.upper(), path, op) for path, ops in doc["paths"].items()
            for method, op in ops.items() if (method.upper(), path) not in PUBLIC]


def _path(path: str, op: dict, objects: dict, decision: object) -> str:
    for param in op.get("parameters", []):
        if param["in"] == "path":
            name = param["name"]
            value = (objects[decision.kind] if isinstance(decision, dep.Obj)
                     and decision.param == name else "1")
            path = path.replace("{" + name + "}", value)
    return path


def test_every_route_has_a_department_decision(client: TestClient) -> None:
    ops = _operations(client)
    assert len(ops) > 100
    missing = [(m, p) for m, p, _ in ops if dep.decision(m, p) is None]
    assert missing == [], f"routes without a department decision: {missing}"


def test_a_caller_of_b_is_refused_the_objects_of_a(client: TestClient, world: dict) -> None:
    checked = 0
    for method, path, op in _operations(client):
        decision = dep.decision(method, path)
        if not isinstance(decision, dep.Obj):
            continue
        res = client.request(method, _path(path, op, world["A"], decision),
                             headers=world["key_b"])
        assert res.status_code == 403, (method, path, res.status_code, res.text)
        assert res.json()["code"] == "forbidden" and world["a"] in res.json()["detail"]
        checked += 1
    assert checked >= 30
    # department staff are limited to their department too; the county-wide roles are not
    assert client.get(f"/v1/devices/{world['A']['device']}",
                      headers=world["staff_b"]).status_code == 403
    res = client.post(f"/v1/events/{world['A']['event']}/accept", headers=world["staff_b"])
    assert res.status_code == 403 and world["a"] in res.json()["detail"]
    assert client.get(f"/v1/devices/{world['A']['device']}",
                      headers=world["admin"]).status_code == 200


def test_a_caller_of_a_gets_past_the_check(client: TestClient, world: dict) -> None:
    alarm = world["A"]["alarm"]
    key = world["key_a"]
    assert ok(client.get(f"/v1/alarms/{alarm}/history", headers=key)) == []
    assert ok(client.post(f"/v1/alarms/{alarm}/acknowledge", headers=key))["state"] \
        == "acknowledged"
    checked = 0
    for method, path, op in _operations(client):
        decision = dep.decision(method, path)
        if isinstance(decision, dep.Obj) and method != "DELETE":
            res = client.request(method, _path(path, op, world["A"], decision), headers=key)
            assert res.status_code != 403, (method, path, res.text)
            checked += 1
    assert checked >= 30


def test_county_wide_routes_refuse_department_callers(client: TestClient, world: dict) -> None:
    checked = 0
    for method, path, op in _operations(client):
        if dep.decision(method, path) == dep.COUNTY:
            res = client.request(method, _path(path, op, {}, None), headers=world["key_b"])
            assert res.status_code == 403, (method, path, res.status_code)
            checked += 1
    assert checked > 20
    # a key limited to a department cannot mint itself an unlimited one
    res = client.post("/v1/api-keys", headers=world["key_b"],
                      json={"name": unique("x"), "routes": ["* /v1/*"], "role": "admin"})
    assert res.status_code == 403


def _ids(res, field: str = "id") -> set[str]:
    assert res.status_code == 200, res.text
    body = res.json()
    items = body["items"] if isinstance(body, dict) else body
    return {str(item[field]) for item in items}


LIST_CHECKS: dict[tuple[str, str], tuple[str, str, str]] = {
    # route: (the query, the object kind of A that must be left out, the field naming it)
    ("GET", "/v1/devices"): ("/v1/devices?limit=1000", "device", "id"),
    ("GET", "/v1/readings/latest"): ("/v1/readings/latest", "device", "device"),
    ("GET", "/v1/gateways"): ("/v1/gateways?limit=1000", "gateway", "id"),
    ("GET", "/v1/commands"): ("/v1/commands?limit=1000", "command", "id"),
    ("GET", "/v1/presets"): ("/v1/presets?limit=1000", "preset", "name"),
    ("GET", "/v1/alarms"): ("/v1/alarms?limit=1000", "alarm", "id"),
}
# lists checked by their own tests below or in test_events_open311.py
OTHER_LIST_TESTS = {("GET", "/v1/live"), ("GET", "/v1/open311/requests.json"),
                    ("GET", "/v1/open311/requests/{service_request_id}.json"),
                    # the map's: tests/integration/map/test_map_api.py
                    ("GET", "/v1/map/tiles/{layer}/{z}/{x}/{y}.mvt"), ("GET", "/v1/map/nearest"),
                    ("POST", "/v1/map/within"), ("GET", "/v1/map/areas/counts"),
                    ("GET", "/v1/map/live"),  # tests/integration/map/test_map_live.py
                    # 数据汇聚's: tests/integration/datafoundation/test_api_systems.py
                    ("GET", "/v1/systems"), ("GET", "/v1/sources"), ("GET", "/v1/syncs"),
                    ("GET", "/v1/sync-runs"),
                    # 数据质量's: tests/integration/datafoundation/test_quality_api.py
                    *(("GET", f"/v1/quality/{p}") for p in (
                        "rules", "runs", "results", "scores", "tasks", "quarantine")),
                    ("GET", "/v1/deliveries"),  # tests/component/test_notifications.py
                    # the network page's: tests/integration/test_network_topology.py
                    ("GET", "/v1/network/topology"), ("GET", "/v1/network/links"),
                    ("GET", "/v1/field/tasks")}  # 城管通's: tests/component/test_field_app.py


def test_lists_leave_out_other_departments(client: TestClient, world: dict) -> None:
    listed = {(m, p) for m, p, _ in _operations(client) if dep.decision(m, p) == dep.LISTED}
    assert listed == set(LIST_CHECKS) | OTHER_LIST_TESTS, "a list route has no check here"
    for (_method, route), (query, kind, field) in LIST_CHECKS.items():
        seen_b = _ids(client.get(query, headers=world["key_b"]), field)
        assert world["A"][kind] not in seen_b and world["B"][kind] in seen_b, route
        seen_a = _ids(client.get(query, headers=world["key_a"]), field)
        assert world["A"][kind] in seen_a and world["B"][kind] not in seen_a, route
    assert world["A"]["device"] not in _ids(client.get("/v1/devices", headers=world["staff_b"]))


BODY_CHECKS: dict[tuple[str, str], Callable[[TestClient, dict, dict], object]] = {
    ("POST", "/v1/devices"): lambda c, w, h: c.post("/v1/devices", headers=h, json={
        "id": unique("dev"), "gateway": w["B"]["gateway"], "profile": "t-meter",
        "department": w["a"], "address": {"host": "127.0.0.1", "port": 1502, "unit_id": 1}}),
    ("POST", "/v1/devices/import"): lambda c, w, h: c.post(
        "/v1/devices/import", headers={**h, "Content-Type": "text/csv"},
        content=(f"id,gateway,profile,department,address.host,address.port,address.unit_id\n"
                 f"{unique('dev')},{w['B']['gateway']},t-meter,{w['a']},127.0.0.1,502,1\n")),
    ("POST", "/v1/gateways"): lambda c, w, h: c.post(
        "/v1/gateways", headers=h, json={"id": unique("gw"), "department": w["a"]}),
}

# writes checked by their own tests (数据汇聚's: tests/integration/datafoundation/)
OTHER_BODY_TESTS = {("POST", "/v1/systems"), ("POST", "/v1/sources"), ("POST", "/v1/syncs"),
                    ("POST", "/v1/sources/{source_id}/test"), ("POST", "/v1/syncs/{sync_id}/run"),
                    ("GET", "/v1/sync-runs/{run_id}/events"),
                    ("GET", "/v1/sync-runs/{run_id}/quarantine"),
                    ("PATCH", "/v1/systems/{system_id}"),
                    ("PUT", "/v1/quality/rules/{dataset_id}"), ("POST", "/v1/quality/runs"),
                    ("POST", "/v1/network/links")}  # tests/integration/test_network_topology.py


def test_writes_naming_another_department_are_refused(client: TestClient, world: dict) -> None:
    bodies = {(m, p) for m, p, _ in _operations(client) if dep.decision(m, p) == dep.BODY}
    assert bodies == set(BODY_CHECKS) | OTHER_BODY_TESTS, "a BODY route has no check here"
    for route, call in BODY_CHECKS.items():
        res = call(client, world, world["key_b"])
        assert res.status_code == 403, (route, res.status_code, res.text)
    # an object route whose body also names a department or devices
    res = client.patch(f"/v1/devices/{world['B']['device']}", headers=world["key_b"],
                       json={"department": world["a"]})
    assert res.status_code == 403
    res = client.put(f"/v1/presets/{unique('p')}", headers=world["key_b"], json={
        "steps": [{"device": world["A"]["device"], "point": "limit_kw", "value": 1}]})
    assert res.status_code == 403 and "steps.0" in res.json()["detail"]
    with psycopg.connect(world["url"]) as conn:
        assert conn.execute("SELECT count(*) FROM devices WHERE department_id = %s AND"
                            " gateway_id = %s", (world["a"], world["B"]["gateway"])
                            ).fetchone()[0] == 0


def test_shared_routes_do_not_refuse_department_callers(client: TestClient,
                                                        world: dict) -> None:
    checked = 0
    for method, path, op in _operations(client):
        if dep.decision(method, path) == dep.SHARED and method == "GET":
            res = client.request(method, _path(path, op, {}, None), headers=world["key_b"])
            assert res.status_code != 403, (method, path, res.text)
            checked += 1
    assert checked > 10


def _notify(url: str, kind: str, device: str, marker: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_notify('cityops_live', %s)", (orjson.dumps(
            {"kind": kind, "id": marker, "device": device, "state": "sent"}).decode(),))


@pytest.fixture
def served(settings: Settings, broker: BrokerFixture) -> Iterator[str]:
    """The API on a real port: the test client buffers a whole answer, an SSE stream never
    ends."""
    port = free_port()
    app = create_app(api_settings(settings, broker))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started and app.state.hub.listening.is_set(), what="the API")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_live_events_follow_the_callers_departments(served: str, world: dict) -> None:
    seen: list[str] = []
    with httpx.stream("GET", f"{served}/v1/live?commands=true&alarms=true",
                      headers=world["key_b"], timeout=20) as stream:
        lines = stream.iter_lines()
        assert next(lines).startswith(": connected")
        for kind in ("command", "alarm"):
            _notify(world["url"], kind, world["A"]["device"], f"{kind}-of-a")
            _notify(world["url"], kind, world["B"]["device"], f"{kind}-of-b")
        for line in lines:  # each B event comes after the A event of its kind
            seen.append(line)
            if "alarm-of-b" in line:
                break
    text = "\n".join(seen)
    assert "command-of-b" in text and "alarm-of-b" in text
    assert "command-of-a" not in text and "alarm-of-a" not in text
