"""The API's error shape and auth, in-process against the real database."""

import secrets

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.auth import hash_password
from api.main import create_app
from api.services.registry import add_user
from cityops.errors import ConfigError
from cityops.principal import Role
from cityops.settings import Settings
from tests.api_kit import bearer
from tests.helpers import free_port


@pytest.fixture(scope="module")
def client(settings: Settings):
    with TestClient(create_app(settings)) as c:
        # the API reads the user's state on each request: a token of an existing user
        c.headers.update(bearer(settings, Role.VIEWER))
        yield c


def test_unknown_device_is_404_with_code(client: TestClient) -> None:
    res = client.get("/v1/devices/no-such-device/latest")
    assert res.status_code == 404
    assert res.json() == {
        "code": "not_found",
        "detail": "device 'no-such-device' is not registered",
    }


def test_malformed_parameters_are_422_naming_the_field(client: TestClient) -> None:
    res = client.get("/v1/devices/x/readings", params={"point": "p", "start": "yesterday"})
    assert res.status_code == 422
    assert res.json()["code"] == "invalid_input" and "start" in res.json()["detail"]
    res = client.get("/v1/devices/x/readings", params={"point": "p", "bucket": "5 minutes"})
    assert res.status_code in (404, 422)


def test_bucket_syntax_is_checked(client: TestClient, settings: Settings) -> None:
    from api.routes.devices import parse_bucket
    from cityops.errors import InvalidInput

    assert parse_bucket("1m") == 60 and parse_bucket("2h") == 7200
    with pytest.raises(InvalidInput, match="use a number"):
        parse_bucket("0s")


def test_anonymous_and_bad_tokens_get_401(client: TestClient) -> None:
    res = client.get("/v1/devices", headers={"Authorization": ""})
    assert res.status_code == 401 and res.json()["code"] == "unauthenticated"
    res = client.get("/v1/devices", headers={"Authorization": "Bearer not-a-jwt"})
    assert res.status_code == 401 and res.json()["detail"] == "invalid token"


def test_login_with_password(client: TestClient, settings: Settings) -> None:
    add_user(
        settings.database_url.get_secret_value(), "t-op", hash_password("s3cret-pass"), "operator"
    )
    bad = client.post("/v1/auth/token", data={"username": "t-op", "password": "wrong"})
    assert bad.status_code == 401
    good = client.post("/v1/auth/token", data={"username": "t-op", "password": "s3cret-pass"})
    assert good.status_code == 200 and good.json()["role"] == "operator"


def test_health_names_the_broker_when_it_is_down(settings: Settings) -> None:
    dead = settings.model_copy(update={"mqtt_url": f"mqtt://127.0.0.1:{free_port()}"})
    with TestClient(create_app(dead)) as c:
        res = c.get("/v1/health")
    assert res.status_code == 503
    assert res.json()["checks"]["database"] == "ok"
    assert res.json()["checks"]["broker"].startswith("down")


def test_health_is_ok_when_both_answer(client: TestClient) -> None:
    res = client.get("/v1/health")
    assert res.status_code == 200, res.text
    assert res.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_app_refuses_to_start_without_a_jwt_secret(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="CITYOPS_JWT_SECRET"):
        create_app(settings.model_copy(update={"jwt_secret": SecretStr(secrets.token_hex(2))}))
