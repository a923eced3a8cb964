"""API keys for platform services (scoped, revocable, expiring, metered) and the data routes
they use: latest values of many devices, readings as CSV."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from cityops.settings import Settings
from ingestion import rollups
from tests.api_kit import api_settings, bearer, ok, register_device, register_gateway, unique
from tests.conftest import BrokerFixture
from tests.helpers import wait_for


@pytest.fixture(scope="module")
def client(settings: Settings, broker: BrokerFixture):
    with TestClient(create_app(api_settings(settings, broker))) as c:
        yield c


@pytest.fixture(scope="module")
def world(client: TestClient, settings: Settings, database_url: str) -> dict:
    """Two departments with a device each, and an hour of readings for both."""
    admin = bearer(settings, "admin", "t-keys-admin")
    depts = [unique("dept"), unique("dept")]
    for dept in depts:
        ok(client.post("/v1/departments", json={"id": dept, "name": dept}, headers=admin), 201)
    gateway = register_gateway(client, admin)["gateway"]["id"]
    devices = [register_device(client, admin, gateway, department=d)["id"] for d in depts]
    now = datetime.now(UTC) - timedelta(minutes=70)
    start = now.replace(minute=now.minute - now.minute % 10, second=0, microsecond=0)
    with psycopg.connect(database_url) as conn:
        for n, device in enumerate(devices):
            point = conn.execute("SELECT id FROM points WHERE device_id = %s AND name = 'voltage'",
                                 (device,)).fetchone()[0]
            with conn.cursor().copy("COPY readings (time, point_id, value) FROM STDIN") as copy:
                for i in range(60):
                    copy.write_row((start + timedelta(minutes=i), point, 200.0 + n * 10 + i))
        # what the ingest transaction does: mark the minutes for the rollups (1 min, 1 h)
        conn.execute("INSERT INTO rollup_dirty SELECT generate_series(%s::timestamptz,"
                     " %s, interval '1 minute')", (start, start + timedelta(minutes=59)))
        # ... and keep the latest values (readings_latest, migration 090)
        conn.execute("SELECT readings_latest_refresh()")
    asyncio.run(_refresh_rollups(database_url))
    return {"admin": admin, "depts": depts, "devices": devices, "start": start}


async def _refresh_rollups(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await rollups.refresh(conn)


def _security(client: TestClient) -> dict[str, str]:
    return bearer(client.app.state.settings, "security_admin")


def _key(client: TestClient, admin: dict, **body) -> dict:
    body = {"name": unique("svc"), "routes": ["GET /v1/readings/*", "GET /v1/devices/*"],
            **body}
    # keys are the security administrator's (三员分立), whoever the test's admin is
    security = bearer(client.app.state.settings, "security_admin")
    return ok(client.post("/v1/api-keys", json=body, headers=security), 201)


def test_key_is_shown_once_and_stored_hashed(client: TestClient, world: dict,
                                             database_url: str) -> None:
    created = _key(client, world["admin"])
    assert created["key"].startswith("cok_") and created["prefix"] == created["key"][:12]
    listed = ok(client.get("/v1/api-keys", headers=_security(client)))["items"]
    assert all("key" not in k for k in listed)
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT key_hash FROM api_keys WHERE id = %s",
                              (created["id"],)).fetchone()[0]
    assert created["key"] not in stored and len(stored) == 64


def test_key_scope_limits_routes_and_departments(client: TestClient, world: dict) -> None:
    mine, theirs = world["devices"]
    key = _key(client, world["admin"], departments=[world["depts"][0]])
    auth = {"X-API-Key": key["key"]}
    assert client.get(f"/v1/devices/{mine}/latest", headers=auth).status_code == 200
    other = client.get(f"/v1/devices/{theirs}/latest", headers=auth)
    assert other.status_code == 403 and "outside" in other.json()["detail"]
    many = ok(client.get("/v1/readings/latest", headers=auth))
    assert [d["device"] for d in many["items"]] == [mine]
    outside = client.get("/v1/gateways", headers=auth)
    assert outside.status_code == 403 and "GET /v1/gateways" in outside.json()["detail"]
    as_bearer = client.get(f"/v1/devices/{mine}/latest",
                           headers={"Authorization": f"Bearer {key['key']}"})
    assert as_bearer.status_code == 200


def test_revoked_expired_and_unknown_keys_are_refused(client: TestClient, world: dict,
                                                      database_url: str) -> None:
    key = _key(client, world["admin"])
    path = f"/v1/devices/{world['devices'][0]}/latest"
    assert client.get(path, headers={"X-API-Key": key["key"]}).status_code == 200
    ok(client.post(f"/v1/api-keys/{key['id']}/revoke", headers=_security(client)))
    res = client.get(path, headers={"X-API-Key": key["key"]})
    assert res.status_code == 401 and res.json()["detail"] == "API key revoked"
    old = _key(client, world["admin"])
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE api_keys SET expires_at = now() - interval '1 s' WHERE id = %s",
                     (old["id"],))
    res = client.get(path, headers={"X-API-Key": old["key"]})
    assert res.status_code == 401 and res.json()["detail"] == "API key expired"
    res = client.get(path, headers={"X-API-Key": "cok_" + "x" * 43})
    assert res.status_code == 401 and res.json()["detail"] == "unknown API key"


def test_calls_with_a_key_are_metered(client: TestClient, world: dict,
                                      database_url: str) -> None:
    key = _key(client, world["admin"])
    auth = {"X-API-Key": key["key"]}
    for _ in range(3):
        client.get(f"/v1/devices/{world['devices'][0]}/latest", headers=auth)
    client.get("/v1/devices/no-such-device/latest", headers=auth)
    client.get("/v1/gateways", headers=auth)  # out of scope: metered as 403 too

    def metered() -> list[tuple]:
        with psycopg.connect(database_url) as conn:
            return conn.execute(
                "SELECT method, route, status, duration_ms FROM api_calls WHERE key_id = %s"
                " ORDER BY time", (key["id"],)).fetchall()

    rows = wait_for(lambda: len(metered()) == 5 and metered(), timeout_s=10, what="metering")
    assert [r[:3] for r in rows] == [("GET", "/v1/devices/{device}/latest", 200)] * 3 + [
        ("GET", "/v1/devices/{device}/latest", 404), ("GET", "/v1/gateways", 403)]
    assert all(r[3] > 0 for r in rows)
    usage = ok(client.get("/v1/api-usage", headers=world["admin"]))
    row = next(u for u in usage if u["key"] == key["name"] and u["route"].endswith("/latest"))
    assert (row["calls"], row["errors"]) == (4, 1)
    keys = ok(client.get("/v1/api-keys", headers=_security(client)))["items"]
    assert next(k for k in keys if k["id"] == key["id"])["last_used_at"] is not None


def test_readings_as_csv_and_latest_of_many(client: TestClient, world: dict) -> None:
    device = world["devices"][0]
    params = {"point": "voltage", "start": world["start"].isoformat(),
              "end": (world["start"] + timedelta(minutes=60)).isoformat()}
    res = client.get(f"/v1/devices/{device}/readings", params={**params, "format": "csv"},
                     headers=world["admin"])
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
    lines = res.text.splitlines()
    assert lines[0] == "time,value,quality" and len(lines) == 61
    assert lines[1].endswith(",200.0,good")
    res = client.get(f"/v1/devices/{device}/readings", headers=world["admin"],
                     params={**params, "format": "csv", "bucket": "10m"})
    lines = res.text.splitlines()
    assert lines[0] == "time,avg,min,max,count" and len(lines) == 7
    assert lines[1].split(",")[1:] == ["204.5", "200.0", "209.0", "10"]
    many = ok(client.get("/v1/readings/latest", params={"department": world["depts"][1]},
                         headers=world["admin"]))
    assert many["total"] == 1
    latest = {p["point"]: p["value"] for p in many["items"][0]["points"]}
    assert latest["voltage"] == 269.0 and latest["limit_kw"] is None
