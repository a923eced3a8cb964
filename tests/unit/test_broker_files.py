"""The broker's accounts store and the Mosquitto password, ACL and config files made from it."""

from __future__ import annotations

import re

import pytest

from cityops.errors import Conflict, InvalidInput, NotFound
from infra.broker import accounts
from infra.broker.accounts import Account
from infra.broker.process import Broker

# written by Debian's `mosquitto_passwd -c -b pw alice s3cret` (2.0.11)
MOSQUITTO_PASSWD_LINE = (
    "alice:$7$101$gtEjQkZRxZSQNQTs$lLFXCznBFIK/6oip6HXDPj3W1cr9KWgnd3WlMWJ+jhXdvdQtWaPl0NRJZjzM"
    "+h26x64WPbNO/ebfaJ09/8U1Aw=="
)


def test_hash_has_mosquitto_2_format() -> None:
    hashed = accounts.hash_password("secret")
    assert re.fullmatch(r"\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==", hashed)
    assert accounts.verify_password("secret", hashed)
    assert not accounts.verify_password("Secret", hashed)


def test_verifies_a_hash_written_by_mosquitto_passwd() -> None:
    hashed = MOSQUITTO_PASSWD_LINE.split(":", 1)[1]
    assert accounts.verify_password("s3cret", hashed)
    assert not accounts.verify_password("s3cret ", hashed)


@pytest.mark.parametrize("hashed", ["", "plain", "$6$abc$def", "$7$x$AAAA$AAAA"])
def test_malformed_hash_never_verifies(hashed: str) -> None:
    assert not accounts.verify_password("anything", hashed)


def test_same_password_gets_a_fresh_salt() -> None:
    assert accounts.hash_password("pw") != accounts.hash_password("pw")


@pytest.mark.parametrize("gateway_id", ["gw1", "GW-01", "site_7-gw", "a" * 64])
def test_accepts_gateway_ids(gateway_id: str) -> None:
    assert accounts.check_gateway_id(gateway_id) == gateway_id


@pytest.mark.parametrize(
    "gateway_id",
    ["", "+", "#", "gw/1", "gw 1", "_internal", "-gw", "$SYS", "svc-ingest", "a" * 65, "gw\n"],
)
def test_rejects_gateway_ids_that_break_topics_or_accounts(gateway_id: str) -> None:
    with pytest.raises(InvalidInput):
        accounts.check_gateway_id(gateway_id)


def _store() -> dict[str, Account]:
    return {
        "svc-ingest": Account(kind="service", password_hash="$7$h1"),
        "gw1": Account(kind="gateway", password_hash="$7$h2"),
        "gw2": Account(kind="gateway", password_hash="$7$h3", revoked=True),
    }


def test_password_file_lists_only_active_accounts() -> None:
    assert accounts.render_password_file(_store()) == "gw1:$7$h2\nsvc-ingest:$7$h1\n"


def test_gateway_acl_is_confined_to_its_own_topics() -> None:
    acl = accounts.render_acl(_store())
    block = acl.split("user gw1\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert block == [
        "topic write cityops/v1/gw1/telemetry",
        "topic write cityops/v1/gw1/status",
        "topic write cityops/v1/gw1/command-results/#",
        "topic read cityops/v1/gw1/commands/#",
        "topic read cityops/v1/gw1/config",
        "topic read cityops/v1/gw1/receipts",
    ]


def test_acl_has_no_pattern_rules_and_skips_revoked() -> None:
    acl = accounts.render_acl(_store())
    assert "pattern" not in acl
    assert "gw2" not in acl


def test_service_acl_rules() -> None:
    store = {name: Account(kind="service", password_hash="h") for name in accounts.SERVICE_RULES}
    acl = accounts.render_acl(store, topic_root="t/v9")
    assert "user svc-ingest\ntopic read t/v9/+/telemetry\n" in acl
    assert "topic readwrite t/v9/_internal/#" in acl
    assert "user svc-api\ntopic write t/v9/+/commands/#\ntopic write t/v9/+/config\n" in acl
    api_block = acl.split("user svc-api\n", 1)[1].split("\n\n", 1)[0]
    assert "telemetry" not in api_block


def test_add_gateway_stores_only_a_hash(tmp_path) -> None:
    password = accounts.add_gateway(tmp_path, "gw1")
    stored = (tmp_path / accounts.ACCOUNTS_FILE).read_text()
    assert password not in stored
    account = accounts.load_accounts(tmp_path)["gw1"]
    assert account.kind == "gateway"
    assert accounts.verify_password(password, account.password_hash)
    assert (tmp_path / accounts.ACCOUNTS_FILE).stat().st_mode & 0o077 == 0


def test_add_existing_gateway_conflicts(tmp_path) -> None:
    accounts.add_gateway(tmp_path, "gw1")
    with pytest.raises(Conflict):
        accounts.add_gateway(tmp_path, "gw1")


def test_revoke_then_add_issues_a_new_password(tmp_path) -> None:
    first = accounts.add_gateway(tmp_path, "gw1")
    accounts.revoke_gateway(tmp_path, "gw1")
    assert accounts.load_accounts(tmp_path)["gw1"].revoked
    second = accounts.add_gateway(tmp_path, "gw1")
    account = accounts.load_accounts(tmp_path)["gw1"]
    assert not account.revoked
    assert accounts.verify_password(second, account.password_hash)
    assert not accounts.verify_password(first, account.password_hash)


def test_revoke_unknown_or_service_is_not_found(tmp_path) -> None:
    accounts.ensure_service_account(tmp_path, "svc-api", "pw")
    for name in ("nope", "svc-api"):
        with pytest.raises(NotFound):
            accounts.revoke_gateway(tmp_path, name)


def test_service_account_is_rewritten_only_when_the_password_changes(tmp_path) -> None:
    assert accounts.ensure_service_account(tmp_path, "svc-ingest", "one")
    assert not accounts.ensure_service_account(tmp_path, "svc-ingest", "one")
    assert accounts.ensure_service_account(tmp_path, "svc-ingest", "two")
    with pytest.raises(InvalidInput):
        accounts.ensure_service_account(tmp_path, "svc-other", "pw")


def test_broker_config_files(tmp_path) -> None:
    accounts.add_gateway(tmp_path, "gw1")
    broker = Broker(tmp_path, 18999)
    broker.write_config()
    conf = broker.conf_path.read_text().splitlines()
    assert "listener 18999 127.0.0.1" in conf
    assert "allow_anonymous false" in conf
    assert f"password_file {broker.password_path}" in conf
    assert f"acl_file {broker.acl_path}" in conf
    assert f"persistence_location {broker.data_dir}/" in conf
    assert "max_queued_messages 1000000" in conf
    listeners = [line for line in conf if line.startswith(("listener", "port"))]
    assert listeners == ["listener 18999 127.0.0.1"]
    assert broker.password_path.read_text().startswith("gw1:$7$")
    assert "user gw1" in broker.acl_path.read_text()
    for path in (broker.conf_path, broker.password_path, broker.acl_path):
        assert path.stat().st_mode & 0o077 == 0


def test_dynsec_binds_client_ids_and_confines_gateway_subscriptions() -> None:
    """Issue #22: the plugin file names each active gateway with its one client id and a role
    that allows its own read topics and refuses every other filter ($share included)."""
    import json

    from infra.broker import dynsec

    body = json.loads(dynsec.render_config(_store(), "t/v9"))
    assert body["clients"] == [{"username": "gw1", "clientid": "agent-gw1",
                                "roles": [{"rolename": "gateway-gw1", "priority": 0}]}]
    (role,) = body["roles"]
    allowed = {a["topic"] for a in role["acls"] if a["allow"]}
    assert allowed == {"t/v9/gw1/commands/#", "t/v9/gw1/config", "t/v9/gw1/receipts"}
    last = min(role["acls"], key=lambda a: a["priority"])
    assert (last["topic"], last["allow"]) == ("#", False)
    assert body["defaultACLAccess"]["publishClientSend"] is False  # the ACL file decides


def test_broker_admin_rule_is_absolute() -> None:
    acl = accounts.render_acl({"svc-broker": Account(kind="service", password_hash="h")})
    assert "user svc-broker\ntopic readwrite $CONTROL/dynamic-security/#\n" in acl
