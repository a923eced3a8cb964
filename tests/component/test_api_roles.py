"""The role matrix: every route in the OpenAPI document but the public two refuses an
anonymous caller with 401 and a caller of a role it does not admit with 403."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from cityops.principal import Role
from cityops.settings import Settings
from tests.api_kit import api_settings, bearer
from tests.conftest import BrokerFixture

SEPARATED = {"security_admin", "audit_admin"}
PUBLIC = {("GET", "/v1/health"), ("POST", "/v1/auth/token"), ("POST", "/v1/auth/refresh"),
          ("POST", "/v1/auth/password")}


@pytest.fixture(scope="module")
def client(settings: Settings, broker: BrokerFixture):
    with TestClient(create_app(api_settings(settings, broker))) as c:
        yield c


def _operations(client: TestClient) -> list[tuple[str, str, dict]]:
    doc = client.get("/openapi.json").json()
    return [(method.upper(), path, op) for path, ops in doc["paths"].items()
            for method, op in ops.items()]


def _concrete(path: str, op: dict) -> str:
    for param in op.get("parameters", []):
        if param["in"] != "path":
            continue
        schema = param.get("schema", {})
        value = {"integer": "1"}.get(schema.get("type"), "t-x")
        if schema.get("format") == "uuid":
            value = str(uuid.uuid4())
        path = path.replace("{" + param["name"] + "}", value)
    return path


def test_every_route_declares_roles_but_the_public_ones(client: TestClient) -> None:
    ops = _operations(client)
    assert len(ops) > 40
    public = {(m, p) for m, p, op in ops if op.get("x-public")}
    assert public == PUBLIC
    for method, path, op in ops:
        if (method, path) not in PUBLIC:
            # the system administrator everywhere but the separated duties (三员分立)
            roles = set(op["x-roles"])
            assert roles and ("admin" in roles or roles <= SEPARATED), (method, path)
            assert "**Roles:**" in op["description"]


def test_anonymous_callers_get_401_everywhere(client: TestClient) -> None:
    checked = 0
    for method, path, op in _operations(client):
        if (method, path) in PUBLIC:
            continue
        res = client.request(method, _concrete(path, op))
        assert res.status_code == 401, (method, path, res.status_code, res.text)
        assert res.json()["code"] == "unauthenticated"
        assert res.headers["www-authenticate"] == "Bearer"
        checked += 1
    assert checked > 40


def test_a_role_not_admitted_gets_403_everywhere(client: TestClient, settings: Settings) -> None:
    tokens = {role: bearer(settings, role) for role in Role}  # each makes its user: once
    checked = 0
    for method, path, op in _operations(client):
        if (method, path) in PUBLIC:
            continue
        outsiders = sorted(set(Role) - {Role(r) for r in op["x-roles"]})
        for role in outsiders:
            res = client.request(method, _concrete(path, op), headers=tokens[role])
            assert res.status_code == 403, (method, path, role, res.status_code, res.text)
            assert res.json()["code"] == "forbidden"
            checked += 1
    assert checked > 100


def test_an_admitted_role_passes_the_check(client: TestClient, settings: Settings) -> None:
    # the matrix is not vacuous: with an admitted role the same calls get past the check
    res = client.get("/v1/audit", headers=bearer(settings, Role.AUDIT_ADMIN))
    assert res.status_code == 200
    res = client.get("/v1/devices/t-x/latest", headers=bearer(settings, Role.VIEWER))
    assert res.status_code == 404 and res.json()["code"] == "not_found"


def test_public_routes_need_no_login(client: TestClient) -> None:
    assert client.get("/v1/health").status_code in (200, 503)
    res = client.post("/v1/auth/token", data={"username": "nobody", "password": "wrong-pass"})
    assert res.status_code == 401


def test_docs_are_served_from_the_app_without_any_cdn(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "http://" not in page.text and "https://" not in page.text
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs/assets/swagger-ui.css").status_code == 200
    doc = client.get("/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["type"] == "oauth2"
    assert schemes["APIKeyHeader"]["name"] == "X-API-Key"
