"""Tokens and keys follow their user's and key's current state (issue #22, 7), and failed
authentication is throttled per account and per address in the database (issue #22, 12).

Two apps on the one database stand for two API processes (CITYOPS_API_WORKERS): what one
changes or counts, the other sees.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from cityops.settings import Settings
from tests.api_kit import api_settings, bearer, ok, unique
from tests.conftest import BrokerFixture
from tests.helpers import wait_for

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def apps(settings: Settings, broker: BrokerFixture):
    """Two API processes with a small throttle; each call comes from its own address."""
    small = api_settings(settings, broker).model_copy(update={
        "auth_failures_per_account": 3, "auth_failures_per_address": 5,
        "auth_failure_window_s": 600, "auth_lockout_s": 600})
    with TestClient(create_app(small)) as one, TestClient(create_app(small)) as two:
        yield one, two


@contextmanager
def _from(client: TestClient, address: str) -> Iterator[TestClient]:
    """The same app (and its event loop) called from another client address: the throttle
    counts per address."""
    transport = client._transport  # the test client's ASGI transport keeps the address
    before, transport.client = transport.client, (address, 50000)  # type: ignore[attr-defined]
    try:
        yield client
    finally:
        transport.client = before  # type: ignore[attr-defined]


def _login_from(client: TestClient, address: str, name: str, password: str):
    with _from(client, address):
        return _login(client, name, password)


def _address() -> str:
    n = uuid.uuid4().int
    return f"10.{n % 250}.{n // 250 % 250}.{n // 62500 % 250 + 1}"


def _user(one: TestClient, admin: dict, role: str = "operator", **extra) -> str:
    name = unique("u")
    ok(one.post("/v1/users", headers=admin,
                json={"username": name, "password": PASSWORD, "role": role, **extra}), 201)
    return name


def _login(client: TestClient, name: str, password: str = PASSWORD):
    return client.post("/v1/auth/token", data={"username": name, "password": password})


def _token(client: TestClient, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {ok(_login(client, name))['access_token']}"}


def test_a_disabled_or_demoted_user_loses_its_token_at_once(apps, settings: Settings) -> None:
    one, two = apps
    admin = bearer(settings, "admin", "t-state-admin")
    name = _user(one, admin)
    token = _token(one, name)
    assert two.get("/v1/commands", headers=token).status_code == 200
    # demoted on one process: the other refuses the operator's routes within its cache time
    ok(one.put(f"/v1/users/{name}/role", headers=bearer(settings, "security_admin"),
               json={"role": "viewer"}))  # roles are the security administrator's
    assert one.get("/v1/commands", headers=token).status_code == 403
    wait_for(lambda: two.get("/v1/commands", headers=token).status_code == 403, timeout_s=5,
             what="the other process to see the demotion")
    assert two.get("/v1/devices", headers=token).status_code == 200  # a viewer still reads
    ok(one.patch(f"/v1/users/{name}", headers=admin, json={"disabled": True}))
    res = one.get("/v1/devices", headers=token)
    assert res.status_code == 401 and "disabled" in res.json()["detail"]
    wait_for(lambda: two.get("/v1/devices", headers=token).status_code == 401, timeout_s=5,
             what="the other process to see the disabled login")
    # enabled again, the old token stays dead: disabling bumped the version it names
    ok(one.patch(f"/v1/users/{name}", headers=admin, json={"disabled": False}))
    assert one.get("/v1/devices", headers=token).status_code == 401
    assert one.get("/v1/devices", headers=_token(one, name)).status_code == 200


def test_a_new_password_ends_the_old_tokens(apps, settings: Settings) -> None:
    one, _two = apps
    admin = bearer(settings, "admin", "t-state-admin")
    name = _user(one, admin)
    token = _token(one, name)
    ok(one.patch(f"/v1/users/{name}", headers=admin, json={"password": "another password 1"}))
    res = one.get("/v1/devices", headers=token)
    assert res.status_code == 401 and "log in again" in res.json()["detail"]
    assert _login(one, name, "another password 1").status_code == 200


def test_a_department_change_applies_to_a_token_already_out(apps, settings: Settings) -> None:
    one, _two = apps
    admin = bearer(settings, "admin", "t-state-admin")
    first, second = unique("d1"), unique("d2")
    for dept in (first, second):
        ok(one.post("/v1/departments", json={"id": dept, "name": dept}, headers=admin), 201)
    name = _user(one, admin, "department_staff", department=first)
    token = _token(one, name)
    gateway = unique("gw")
    ok(one.post("/v1/gateways", json={"id": gateway, "department": first}, headers=admin), 201)
    assert one.get(f"/v1/gateways/{gateway}", headers=token).status_code == 200
    ok(one.patch(f"/v1/users/{name}", headers=admin, json={"department": second}))
    assert one.get(f"/v1/gateways/{gateway}", headers=token).status_code == 403


def test_a_revoked_key_stops_on_every_process(apps, settings: Settings) -> None:
    one, two = apps
    security = bearer(settings, "security_admin")  # keys are the security admin's
    created = ok(one.post("/v1/api-keys", headers=security, json={
        "name": unique("k"), "role": "viewer", "routes": ["GET /v1/*"]}), 201)
    key = {"X-API-Key": created["key"]}
    assert two.get("/v1/devices", headers=key).status_code == 200
    ok(one.post(f"/v1/api-keys/{created['id']}/revoke", headers=security))
    assert one.get("/v1/devices", headers=key).status_code == 401
    wait_for(lambda: two.get("/v1/devices", headers=key).status_code == 401, timeout_s=5,
             what="the other process to see the revocation")


def test_failed_logins_are_throttled_per_account_across_processes(
        apps, settings: Settings) -> None:
    """Regression: 300 wrong passwords were all answered; now the fourth attempt on an
    account is 429 (the limit is 3 here), counted across both processes, the same for a name
    that does not exist, and even the right password waits."""
    one, two = apps
    admin = bearer(settings, "admin", "t-state-admin")
    name, ghost = _user(one, admin), unique("ghost")
    answers = {}
    for who in (name, ghost):
        codes = [_login_from(side, _address(), who, "wrong password").status_code
                 for side in (one, two, one)]
        over = _login_from(two, _address(), who, PASSWORD)
        answers[who] = (codes, over.status_code, over.json()["code"])
        assert 1 <= int(over.headers["retry-after"]) <= 600
    assert answers[name] == answers[ghost] == ([401, 401, 401], 429, "too_many_attempts")
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        audited = conn.execute("SELECT action, count(*) FROM audit_log WHERE actor = %s"
                               " AND action LIKE 'auth.%%' GROUP BY action ORDER BY action",
                               (name,)).fetchall()
    assert audited == [("auth.failed", 3), ("auth.throttled", 1)]


def test_failures_from_one_address_are_throttled_whatever_the_names(apps) -> None:
    one, two = apps
    address = _address()
    codes = [_login_from((one, two)[n % 2], address, unique("nobody"), "x").status_code
             for n in range(6)]
    assert codes == [401] * 5 + [429]
    # another address is not affected
    assert _login_from(one, _address(), unique("nobody"), "x").status_code == 401


def test_wrong_api_keys_are_throttled_per_address(apps) -> None:
    one, _two = apps
    with _from(one, _address()):
        codes = [one.get("/v1/devices", headers={"X-API-Key": f"cok_{uuid.uuid4().hex}"}
                         ).status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]
