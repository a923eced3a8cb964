"""Helpers for the API's tests: settings pointing onboarding at the test broker, tokens for
any role, and a few registry shortcuts."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from api.auth import issue_token
from cityops.principal import Principal, Role
from cityops.settings import Settings
from tests.conftest import BrokerFixture

METER_PROFILE: dict[str, Any] = {
    "model": "t-meter", "title": "Test meter", "category": "power", "protocol": "modbus",
    "points": [
        {"name": "voltage", "data_type": "float32", "unit": "V",
         "address": {"table": "input_register", "offset": 0, "order": "CDAB"},
         "simulate": {"kind": "constant", "mean": 231.25}},
        {"name": "limit_kw", "data_type": "uint16", "unit": "kW", "writable": True,
         "range": {"min": 0, "max": 500}, "address": {"table": "holding_register", "offset": 10},
         "simulate": {"kind": "constant", "mean": 80}},
        {"name": "breaker_closed", "data_type": "bool", "writable": True,
         "address": {"table": "coil", "offset": 0}},
    ],
    "methods": [
        {"name": "set_limit", "args": [{"name": "kw", "data_type": "uint16",
                                        "range": {"min": 0, "max": 500}}],
         "writes": [{"point": "limit_kw", "arg": "kw"}]},
    ],
}


def api_settings(settings: Settings, broker: BrokerFixture) -> Settings:
    return settings.model_copy(update={"broker_state_dir": broker.broker.state_dir})


# not an argon2 hash: these users cannot log in with a password, only hold test tokens
NO_PASSWORD = "!test-user"


def bearer(settings: Settings, role: Role | str, name: str | None = None,
           department: str | None = None) -> dict[str, str]:
    """A token for a user that exists with this role (and department): the API reads the
    user's state on every request, so a token of nobody in `users` is refused."""
    role = Role(role)
    name = name or f"t-{role.value}"
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (username, password_hash, role, department_id)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (username) DO UPDATE"
            " SET role = excluded.role, department_id = excluded.department_id, disabled = false"
            " WHERE (users.role, users.department_id, users.disabled)"
            " IS DISTINCT FROM (excluded.role, excluded.department_id, false)",
            (name, NO_PASSWORD, role.value, department))
        return user_bearer(settings, conn, name)


def user_bearer(settings: Settings, conn: psycopg.Connection, name: str) -> dict[str, str]:
    """A token for an existing user, of its current role and auth version."""
    role, version = conn.execute("SELECT role, auth_version FROM users WHERE username = %s",
                                 (name,)).fetchone()  # type: ignore[misc]
    token = issue_token(Principal(name, Role(role), version=version),
                        settings.jwt_secret.get_secret_value(), 600)
    return {"Authorization": f"Bearer {token}"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


def ensure_profile(client: TestClient, admin: dict[str, str], body: dict | None = None) -> str:
    body = body or METER_PROFILE
    res = client.post("/v1/profiles", json=body, headers=admin)
    assert res.status_code in (201, 409), res.text
    return body["model"]


def register_gateway(client: TestClient, admin: dict[str, str], gateway: str | None = None
                     ) -> dict:
    gateway = gateway or unique("gw")
    return ok(client.post("/v1/gateways", json={"id": gateway, "name": "test"}, headers=admin),
              201)


def register_device(client: TestClient, admin: dict[str, str], gateway: str, **extra: Any
                    ) -> dict:
    body = {"id": unique("dev"), "gateway": gateway, "profile": ensure_profile(client, admin),
            "address": {"host": "127.0.0.1", "port": 1502, "unit_id": 1}, **extra}
    return ok(client.post("/v1/devices", json=body, headers=admin), 201)


def fuzz(base: str, headers: dict[str, str], keep, examples: int) -> tuple[int, list[str]]:
    """Schemathesis over the operations `keep(operation)` accepts: (calls, 5xx answers)."""
    import schemathesis
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hypothesis_settings

    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if not keep(operation):
            continue

        @given(case=operation.as_strategy())
        @hypothesis_settings(max_examples=examples, deadline=None, database=None,
                             suppress_health_check=list(HealthCheck))
        def run(case) -> None:
            nonlocal calls
            response = case.call(base_url=base, headers=headers, timeout=30)
            calls += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: "
                                f"{response.status_code} {response.text[:200]}")

        run()
    return calls, failures
