"""Sessions (issue #18 item 5, issue #19): refresh tokens rotate, a reused one ends its whole
family, logout and a new password end a session, an idle session ends, and a display's
read-only token works without a login, from its own addresses only, until revoked."""

from __future__ import annotations

import time

import jwt
import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from cityops.settings import Settings
from tests.api_kit import api_settings, bearer, ok, unique
from tests.conftest import BrokerFixture

PASSWORD = "Sessions-Test-2026!x"


@pytest.fixture(scope="module")
def client(settings: Settings, broker: BrokerFixture):
    with TestClient(create_app(api_settings(settings, broker))) as c:
        yield c


def _person(client: TestClient, settings: Settings, role: str = "operator") -> str:
    name = unique("s")
    ok(client.post("/v1/users", headers=bearer(settings, "admin", "t-sess-admin"),
                   json={"username": name, "password": PASSWORD, "role": role}), 201)
    return name


def _login(client: TestClient, name: str) -> dict:
    return ok(client.post("/v1/auth/token", data={"username": name, "password": PASSWORD}))


def _refresh(client: TestClient, token: str):
    return client.post("/v1/auth/refresh", json={"refresh_token": token})


def _auth(answer: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {answer['access_token']}"}


def test_refresh_rotates_and_a_reused_token_revokes_the_family(
        client: TestClient, settings: Settings) -> None:
    name = _person(client, settings)
    first = _login(client, name)
    assert first["refresh_token"].startswith("cor_") and first["idle_timeout_s"] > 0
    second = ok(_refresh(client, first["refresh_token"]))
    assert second["refresh_token"] != first["refresh_token"]
    third = ok(_refresh(client, second["refresh_token"]))
    assert client.get("/v1/devices", headers=_auth(third)).status_code == 200
    # the first token again: copied by someone; every token of the session stops
    res = _refresh(client, first["refresh_token"])
    assert res.status_code == 401 and "reused" in res.json()["detail"]
    assert _refresh(client, third["refresh_token"]).status_code == 401
    res = client.get("/v1/devices", headers=_auth(third))
    assert res.status_code == 401 and "session ended" in res.json()["detail"]
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        action = conn.execute("SELECT action FROM audit_log WHERE actor = %s AND action ="
                              " 'auth.refresh_reused'", (name,)).fetchone()
    assert action is not None
    # another login of the same person is its own session, untouched
    assert client.get("/v1/devices", headers=_auth(_login(client, name))).status_code == 200


def test_logout_and_a_new_password_end_the_session(client: TestClient,
                                                   settings: Settings) -> None:
    name = _person(client, settings)
    one, two = _login(client, name), _login(client, name)
    assert client.post("/v1/auth/logout", headers=_auth(one)).status_code == 204
    assert client.get("/v1/devices", headers=_auth(one)).status_code == 401
    assert _refresh(client, one["refresh_token"]).status_code == 401
    assert client.get("/v1/devices", headers=_auth(two)).status_code == 200
    ok(client.patch(f"/v1/users/{name}", headers=bearer(settings, "admin", "t-sess-admin"),
                    json={"password": "Another-Pass-2026!y"}))
    res = _refresh(client, two["refresh_token"])
    assert res.status_code == 401 and "password changed" in res.json()["detail"]


def test_an_idle_session_ends(client: TestClient, settings: Settings) -> None:
    name = _person(client, settings)
    answer = _login(client, name)
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        conn.execute("UPDATE auth_sessions SET last_active_at = now() - make_interval(secs =>"
                     " %s) WHERE username = %s", (settings.session_idle_timeout_s + 1, name))
    res = _refresh(client, answer["refresh_token"])
    assert res.status_code == 401 and "idle" in res.json()["detail"]


def test_forged_unsigned_and_expired_tokens_are_refused(client: TestClient,
                                                        settings: Settings) -> None:
    name = _person(client, settings, "admin")
    good = _login(client, name)["access_token"]
    claims = jwt.decode(good, options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none")
    forged = jwt.encode({**claims, "sub": "someone-else"}, "not-the-secret-" * 3,
                        algorithm="HS256")
    head, _body, sig = good.split(".")
    other = jwt.utils.base64url_encode(orjson.dumps({**claims, "sub": "x"})).decode()
    tampered = f"{head}.{other}.{sig}"  # the payload changed, the signature kept
    expired = jwt.encode({**claims, "exp": int(time.time()) - 5},
                         settings.jwt_secret.get_secret_value(), algorithm="HS256")
    for token, why in ((unsigned, "invalid token"), (forged, "invalid token"),
                       (tampered, "invalid token"), (expired, "token expired")):
        res = client.get("/v1/devices", headers={"Authorization": f"Bearer {token}"})
        assert res.status_code == 401 and res.json()["detail"] == why, (token, res.text)


def test_a_display_reads_without_login_until_revoked(client: TestClient,
                                                     settings: Settings) -> None:
    security = bearer(settings, "security_admin", "t-sess-security")
    assert client.post("/v1/displays", json={"id": "x", "name": "x"},
                       headers=bearer(settings, "admin")).status_code == 403
    wall = ok(client.post("/v1/displays", headers=security,
                          json={"id": unique("wall"), "name": "指挥中心大屏"}), 201)
    assert wall["token"].startswith("cod_")
    headers = {"Authorization": f"Bearer {wall['token']}"}
    assert client.get("/v1/devices", headers=headers).status_code == 200
    res = client.post("/v1/events", headers=headers, json={"title": "x"})
    assert res.status_code == 403  # read-only: no writes whatever the role admits
    # bound to its addresses: the test client calls from "testclient", not 10.9.9.0/24
    bound = ok(client.post("/v1/displays", headers=security, json={
        "id": unique("wall"), "name": "b", "addresses": ["10.9.9.0/24"]}), 201)
    res = client.get("/v1/devices", headers={"Authorization": f"Bearer {bound['token']}"})
    assert res.status_code == 401 and "is not used from" in res.json()["detail"]
    ok(client.post(f"/v1/displays/{wall['id']}/revoke", headers=security))
    res = client.get("/v1/devices", headers=headers)
    assert res.status_code == 401 and res.json()["detail"] == "display revoked"
