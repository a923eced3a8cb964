"""One owner for a gateway's broker account and its registry row (issue #13, 13): cloud
provisioning makes both, and every state (an account without a row, a row without an account)
has a way out through the API.

Regression: a gateway made by cloud provisioning (`cityops_gateway` metadata) got broker
credentials but no registry row; registering it then answered 409 and revoking it 404.
"""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.services.broker_accounts import LocalMosquitto
from api.services.gateways import provision
from cityops.settings import Settings
from cloud_control.configure import _gateway_password
from cloud_control.handlers import Context
from tests.api_kit import api_settings, bearer, ok, unique
from tests.component.test_api_registry import Gateway, _login
from tests.conftest import BrokerFixture


@pytest.fixture(scope="module")
def client(settings: Settings, broker: BrokerFixture):
    with TestClient(create_app(api_settings(settings, broker))) as c:
        yield c


@pytest.fixture(scope="module")
def tech(settings: Settings) -> dict[str, str]:
    return bearer(settings, "field_technician", "t-gw-tech")


def _accounts(settings: Settings, broker: BrokerFixture) -> LocalMosquitto:
    return LocalMosquitto(broker.broker.state_dir, settings.topic_root)


def test_provisioning_makes_the_row_and_the_account_together(
        client: TestClient, tech: dict, settings: Settings, broker: BrokerFixture) -> None:
    gateway = unique("gw-cloud")
    # what the provisioning job calls for a server with `cityops_gateway` metadata
    ctx = Context(settings=api_settings(settings, broker), report=lambda *_a, **_k: None)
    password = _gateway_password(ctx, gateway)
    row = ok(client.get(f"/v1/gateways/{gateway}", headers=tech))
    assert row["revoked_at"] is None
    _login(broker, gateway, password).close()
    # the registry's ways work on it: revoke cuts it off, credentials re-issue
    assert ok(client.post(f"/v1/gateways/{gateway}/revoke", headers=tech))["revoked_at"]
    stale = Gateway(broker, gateway, password)
    assert stale.refused()
    stale.close()
    fresh = ok(client.post(f"/v1/gateways/{gateway}/credentials", headers=tech))
    _login(broker, gateway, fresh["mqtt"]["password"]).close()
    # provisioning again (a rebuilt server) keeps the row and issues a new password
    again = asyncio.run(provision(settings.database_url.get_secret_value(),
                                  _accounts(settings, broker), gateway))
    assert again != fresh["mqtt"]["password"]
    assert ok(client.get(f"/v1/gateways/{gateway}", headers=tech))["id"] == gateway


def _orphan(settings: Settings, broker: BrokerFixture) -> tuple[str, str]:
    """A broker account without a registry row, as provisioning made them before."""
    gateway = unique("gw-orphan")
    return gateway, asyncio.run(_accounts(settings, broker).issue(gateway))


def test_registering_an_existing_broker_account_adopts_it(
        client: TestClient, tech: dict, settings: Settings, broker: BrokerFixture) -> None:
    gateway, password = _orphan(settings, broker)
    res = client.post("/v1/gateways", json={"id": gateway, "name": "pump 3"}, headers=tech)
    assert res.status_code == 201, res.text
    assert res.json()["mqtt"]["password"] is None  # the running agent's password is kept
    assert res.json()["gateway"]["name"] == "pump 3"
    _login(broker, gateway, password).close()
    assert client.post("/v1/gateways", json={"id": gateway, "name": "x"},
                       headers=tech).status_code == 409  # registered now: a real conflict


def test_an_account_without_a_row_can_be_revoked_or_reissued(
        client: TestClient, tech: dict, settings: Settings, broker: BrokerFixture) -> None:
    gateway, password = _orphan(settings, broker)
    revoked = ok(client.post(f"/v1/gateways/{gateway}/revoke", headers=tech))
    assert revoked["id"] == gateway and revoked["revoked_at"] is not None
    refused = Gateway(broker, gateway, password)
    assert refused.refused()
    refused.close()
    other, _old = _orphan(settings, broker)
    fresh = ok(client.post(f"/v1/gateways/{other}/credentials", headers=tech))
    assert fresh["gateway"]["id"] == other
    _login(broker, other, fresh["mqtt"]["password"]).close()


def test_a_row_without_an_account_can_be_revoked(
        client: TestClient, tech: dict, settings: Settings) -> None:
    gateway = unique("gw-file")  # as `cityops registry load` registers one
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        conn.execute("INSERT INTO gateways (id) VALUES (%s)", (gateway,))
    assert ok(client.post(f"/v1/gateways/{gateway}/revoke", headers=tech))["revoked_at"]
    assert client.post("/v1/gateways/nope-none/revoke", headers=tech).status_code == 404
