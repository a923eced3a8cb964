"""API robustness on the real database (issues #13 and #22): constraint violations as
{code, detail}, undeclared methods as 405, nosniff on every answer, and a last-resort 500 in
the same error shape."""

from __future__ import annotations

import secrets

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.errors import integrity_error
from api.main import create_app
from cityops.settings import Settings
from tests.api_kit import bearer


@pytest.fixture(scope="module")
def client(settings: Settings):
    with TestClient(create_app(settings)) as c:
        c.headers.update(bearer(settings, "viewer", "t-robust-viewer"))
        yield c


def test_an_unknown_department_is_422_naming_the_field(client: TestClient,
                                                       settings: Settings) -> None:
    """Issue #13 item 14: PATCH /v1/users with a department nobody registered was a plain-text
    500 (the foreign key refused it); every constraint now answers {code, detail}."""
    admin = bearer(settings, "admin", "t-fk-admin")
    name = f"t-fk-{secrets.token_hex(3)}"
    res = client.post("/v1/users", headers=admin, json={
        "username": name, "password": "long-enough-1", "role": "viewer"})
    assert res.status_code == 201, res.text
    res = client.patch(f"/v1/users/{name}", headers=admin, json={"department": "no-such-dept"})
    assert res.status_code == 422, res.text
    assert res.json()["code"] == "invalid_input"
    assert res.json()["detail"].startswith("department: 'no-such-dept' is not registered in "
                                           "departments")


def _violation(url: str, sql: str, params: tuple = ()) -> psycopg.IntegrityError:
    with psycopg.connect(url) as conn, pytest.raises(psycopg.IntegrityError) as caught:
        conn.execute(sql, params)
    return caught.value


def test_every_kind_of_constraint_becomes_a_clear_error(settings: Settings) -> None:
    """The real database's errors of each kind, through the one translation."""
    url = settings.database_url.get_secret_value()
    dept = f"t-dept-{secrets.token_hex(3)}"
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO departments (id, name) VALUES (%s, %s)", (dept, dept))
        conn.execute("INSERT INTO users (username, password_hash, role, department_id)"
                     " VALUES (%s, 'x', 'viewer', %s)", (dept, dept))
    cases = {
        "fk": _violation(url, "INSERT INTO users (username, password_hash, role, department_id)"
                              " VALUES ('t-fk-x', 'x', 'viewer', 'nope')"),
        "in_use": _violation(url, "DELETE FROM departments WHERE id = %s", (dept,)),
        "unique": _violation(url, "INSERT INTO departments (id, name) VALUES (%s, 'x')",
                             (dept,)),
        "check": _violation(url, "UPDATE users SET role = 'king' WHERE username = %s", (dept,)),
        "not_null": _violation(url, "UPDATE users SET role = NULL WHERE username = %s",
                               (dept,)),
    }
    answers = {k: integrity_error(err) for k, err in cases.items()}
    assert answers["fk"] == (422, {"code": "invalid_input", "detail": (
        "department: 'nope' is not registered in departments (users_department_id_fkey)")})
    assert answers["in_use"][0] == 409 and answers["in_use"][1]["code"] == "conflict"
    assert f"id '{dept}' is still used by users" in answers["in_use"][1]["detail"]
    assert answers["unique"] == (409, {"code": "conflict", "detail":
                                       f"id: '{dept}' exists already (departments_pkey)"})
    assert answers["check"][0] == 422 and "users_role_check" in answers["check"][1]["detail"]
    assert answers["not_null"] == (422, {"code": "invalid_input",
                                         "detail": "role: a value is required"})


def test_undeclared_methods_are_405_with_allow(client: TestClient) -> None:
    """Issue #22 item 12: GET /v1/events/sweep fell into GET /v1/events/{event_id} (422)."""
    for method, path, allow in (("GET", "/v1/events/sweep", "POST"),
                                ("GET", "/v1/devices/import", "POST"),
                                ("DELETE", "/v1/devices/import", "POST"),
                                ("PUT", "/v1/devices/meter-01", "DELETE, GET, PATCH")):
        res = client.request(method, path)
        assert res.status_code == 405, (method, path, res.text)
        assert res.json()["code"] == "method_not_allowed"
        assert res.headers["allow"] == allow, (method, path)


def test_every_answer_says_nosniff(client: TestClient) -> None:
    """Issue #22 item 12: downloads (CSV) and errors alike."""
    for res in (client.get("/v1/health"), client.get("/v1/devices/x/latest"),
                client.get("/v1/devices", params={"limit": 0}), client.get("/openapi.json"),
                client.get("/v1/dashboards/services", params={"format": "csv"}),
                client.get("/v1/devices/x/readings", params={"point": "p", "format": "csv"})):
        assert res.headers.get("x-content-type-options") == "nosniff", res.request.url


def test_an_unexpected_failure_is_500_in_the_error_shape(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/t-boom")
    async def boom() -> None:
        raise RuntimeError("SELECT secret FROM somewhere")

    with TestClient(app, raise_server_exceptions=False) as c:
        res = c.get("/t-boom")
    assert res.status_code == 500
    assert res.json() == {"code": "internal_error",
                          "detail": "an internal error; see the API's log"}
    assert res.headers["x-content-type-options"] == "nosniff"
