"""One device's latest and the latest page answered by api/lean.py (not FastAPI's dependency
solving), against the real database: the same answer, headers and error shape, the route's
role and department checks, the page's query as FastAPI parses it, and a user's demotion or
disabling applied within the identity cache's bound, as on every other route. API keys on
this path: tests/component/test_api_keys.py."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.identity import CACHE_TTL_S
from api.main import create_app
from api.pool import DatabasePool
from api.read_pool import autocommit
from cityops.settings import Settings
from tests.api_kit import api_settings, bearer, ok, unique
from tests.conftest import BrokerFixture
from tests.helpers import wait_for
from tests.integration.ingest_helpers import in_a_department, register


def _security_headers(res) -> None:
    assert "frame-ancestors 'none'" in res.headers["content-security-policy"]
    assert res.headers["x-frame-options"] == "DENY"
    assert res.headers["x-content-type-options"] == "nosniff"


def test_the_lean_path_answers_as_the_route_did(
    settings: Settings, broker: BrokerFixture, database_url: str,
) -> None:
    gateway = unique("gw")
    device = f"{gateway}-d"
    ids = register(database_url, gateway, {device: ["a"]})
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO readings_latest (point_id, time, value, quality)"
                     " VALUES (%s, '2026-01-02T03:04:05.5Z', 7.25, 0)", (ids[(device, "a")],))
    name = unique("t-lean")
    viewer = bearer(settings, "viewer", name)
    path = f"/v1/devices/{device}/latest"
    with TestClient(create_app(api_settings(settings, broker))) as client:
        res = client.get(path, headers=viewer)
        assert ok(res) == {"device": device, "points": [
            {"point": "a", "unit": "", "value": 7.25, "time": "2026-01-02T03:04:05.500000Z",
             "quality": "good"}]}
        assert res.headers["content-type"] == "application/json"
        _security_headers(res)
        lean = client.app.state.lean_reads
        served = lean.served
        anonymous = client.get(path)
        assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthenticated"
        assert anonymous.headers["www-authenticate"] == "Bearer"
        _security_headers(anonymous)
        # the first of a repeated header counts, as for FastAPI's security schemes
        twice = client.get(path, headers=[("authorization", viewer["Authorization"]),
                                          ("authorization", "Bearer nonsense")])
        assert twice.status_code == 200
        assert lean.served == served + 2
        # a path parameter the route's pattern refuses goes on to FastAPI: its 422
        bad = client.get("/v1/devices/Not_An_Id/latest", headers=viewer)
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_input"
        assert lean.served == served + 2

        def status() -> int:
            return client.get(path, headers=viewer).status_code

        with psycopg.connect(database_url, autocommit=True) as conn:
            # demoted to a role the route does not admit: refused within the cache's bound
            conn.execute("UPDATE users SET role = 'audit_admin' WHERE username = %s", (name,))
            changed = time.monotonic()
            wait_for(lambda: status() == 403, timeout_s=CACHE_TTL_S + 3, interval_s=0.05,
                     what="the demotion applied")
            assert time.monotonic() - changed < CACHE_TTL_S + 1
            conn.execute("UPDATE users SET role = 'viewer' WHERE username = %s", (name,))
            wait_for(lambda: status() == 200, timeout_s=CACHE_TTL_S + 3, interval_s=0.05,
                     what="the role given back")
            conn.execute("UPDATE users SET disabled = true WHERE username = %s", (name,))
            changed = time.monotonic()
            wait_for(lambda: status() == 401, timeout_s=CACHE_TTL_S + 3, interval_s=0.05,
                     what="the disabled login refused")
            assert time.monotonic() - changed < CACHE_TTL_S + 1


def test_the_latest_page_on_the_lean_path_answers_as_fastapi_does(
    settings: Settings, broker: BrokerFixture, database_url: str,
) -> None:
    gateway = unique("gw")
    devices = [f"{gateway}-{n}" for n in ("a", "b", "c")]
    register(database_url, gateway, {d: ["v"] for d in devices})
    dept, other = in_a_department(database_url, gateway)
    viewer = bearer(settings, "viewer", unique("t-lean-page"))
    staff = bearer(settings, "department_staff", unique("t-lean-staff"), dept)
    outsider = bearer(settings, "department_staff", unique("t-lean-out"), other)
    path = "/v1/readings/latest"
    with TestClient(create_app(api_settings(settings, broker))) as client:
        lean = client.app.state.lean_reads

        def page(headers: dict[str, str], query: str) -> tuple[int, dict]:
            served = lean.served
            res = client.get(f"{path}?{query}", headers=headers)
            return lean.served - served, res.json()

        # served here: two pages by keyset, as the route declares them
        taken, first = page(viewer, f"department={dept}&limit=2")
        assert taken == 1 and [i["device"] for i in first["items"]] == devices[:2]
        assert (first["total"], first["limit"], first["next_after"]) == (3, 2, devices[1])
        taken, second = page(viewer, f"department={dept}&limit=2&after={devices[1]}")
        assert taken == 1 and [i["device"] for i in second["items"]] == devices[2:]
        assert second["next_after"] is None
        # a parameter the parser does not know goes to FastAPI, which ignores it: the same
        assert page(viewer, f"department={dept}&limit=2&x=1") == (0, first)
        # invalid: FastAPI's 422, in the one error shape
        for query in ("limit=0", "limit=1001", "limit=two", "after=Not_An_Id", "site="):
            taken, body = page(viewer, query)
            assert (taken, body.get("code")) == (0, "invalid_input"), (query, body)
        # repeated: left to FastAPI, which takes the last
        taken, body = page(viewer, f"department={other}&department={dept}&limit=2")
        assert (taken, body) == (0, first)
        # the caller's departments scope the page; anonymous and wrong roles are refused
        assert [i["device"] for i in page(staff, "limit=10")[1]["items"]] == devices
        assert page(outsider, f"department={dept}")[1]["items"] == []
        assert page({}, "limit=2") == (1, page({}, "limit=2")[1])
        assert client.get(path).json()["code"] == "unauthenticated"
        audit = bearer(settings, "audit_admin", unique("t-lean-audit"))
        refused = client.get(path, headers=audit)
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
        # gzip to a client that accepts it, made once per answer
        res = client.get(f"{path}?department={dept}&limit=2",
                         headers=viewer | {"Accept-Encoding": "gzip"})
        assert res.headers["content-encoding"] == "gzip" and res.json() == first
        assert res.headers["vary"] == "Accept-Encoding"
        _security_headers(res)


def test_autocommit_connections_go_back_to_the_pool_as_they_came(database_url: str) -> None:
    async def run() -> None:
        async with DatabasePool(database_url, min_size=1, max_size=1, open=False) as pool:
            await pool.open(wait=True)
            async with autocommit(pool) as conn:
                assert conn.autocommit
                first = conn.info.backend_pid
            with pytest.raises(psycopg.errors.DivisionByZero):
                async with autocommit(pool) as conn:
                    await conn.execute("SELECT 1/0")
            async with pool.connection() as conn:  # the same one, in transactions again
                assert conn.info.backend_pid == first and not conn.autocommit
                assert await (await conn.execute("SELECT 2")).fetchone() == (2,)
            assert pool.get_stats()["pool_available"] == 1
    asyncio.run(run())
