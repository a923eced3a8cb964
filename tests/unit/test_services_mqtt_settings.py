"""The services' MQTT over TLS as `cityops stack up` writes it into local.env (issue #19 item
1): a new file and one made before TLS both end on the TLS listener with a certificate per
service, passwords kept; an operator's own broker is left alone; gateways are still handed the
password listener; a wrong or missing certificate stops a service at start, naming the
setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from api.services.gateways import Onboarding
from api.services.mqtt_link import MqttLink
from cityops.errors import ConfigError
from cityops.settings import Settings, load_settings
from cityops.tls import service_tls_context
from cloud_control.configure import agent_broker
from infra.local import stack
from ingestion.consumer import IngestWorker

BEFORE_TLS = {  # a local.env of a stack made before this change (values shortened)
    "CITYOPS_DATABASE_URL": "postgresql://cityops:dbpw@127.0.0.1:5433/cityops",
    "CITYOPS_MQTT_URL": "mqtt://127.0.0.1:1884",
    "CITYOPS_INGEST_MQTT_USERNAME": "svc-ingest", "CITYOPS_INGEST_MQTT_PASSWORD": "ingest-pw",
    "CITYOPS_API_MQTT_USERNAME": "svc-api", "CITYOPS_API_MQTT_PASSWORD": "api-pw",
    "CITYOPS_JWT_SECRET": "jwt", "CITYOPS_OWN_EXTRA": "kept",
}


def _settings(env: dict[str, str], **overrides: object) -> Settings:
    values = {k.removeprefix("CITYOPS_").lower(): v for k, v in env.items()}
    return Settings(_env_file=None, **(values | overrides))


def _common_name(path: str) -> str:
    cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    return cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value


def test_a_stack_made_before_tls_moves_to_it_keeping_its_passwords(tmp_path: Path) -> None:
    env = stack._local_env(dict(BEFORE_TLS), tmp_path)
    assert env["CITYOPS_MQTT_URL"] == "mqtts://127.0.0.1:8884"
    assert env["CITYOPS_GATEWAY_MQTT_URL"] == "mqtt://127.0.0.1:1884"
    for key in BEFORE_TLS.keys() - {"CITYOPS_MQTT_URL"}:
        assert env[key] == BEFORE_TLS[key], key
    assert env["CITYOPS_MQTT_CA_FILE"] == str((tmp_path / "tls" / "ca.crt").absolute())
    assert _common_name(env["CITYOPS_INGEST_MQTT_CERT_FILE"]) == "svc-ingest"
    assert _common_name(env["CITYOPS_API_MQTT_CERT_FILE"]) == "svc-api"
    issued = Path(env["CITYOPS_API_MQTT_CERT_FILE"]).read_bytes()
    again = stack._local_env(env, tmp_path)  # the next `stack up`: nothing changes
    assert again == env
    assert Path(env["CITYOPS_API_MQTT_CERT_FILE"]).read_bytes() == issued, "not re-issued"
    assert stack._local_env({}, tmp_path)["CITYOPS_MQTT_URL"] == "mqtts://127.0.0.1:8884"

    settings = _settings(env)
    assert service_tls_context(settings, "ingest") is not None
    # registering a gateway hands it the password listener, not the services' TLS one
    body = Onboarding(settings, None, None, None).credentials_body("gw-1", "pw")  # type: ignore
    assert body["url"] == "mqtt://127.0.0.1:1884"


def test_an_operators_own_broker_settings_are_left_alone(tmp_path: Path) -> None:
    county = BEFORE_TLS | {"CITYOPS_MQTT_URL": "mqtts://mqtt.county.example:8883"}
    env = stack._local_env(county, tmp_path)
    assert env["CITYOPS_MQTT_URL"] == "mqtts://mqtt.county.example:8883"
    assert not any(k.endswith(("_CERT_FILE", "_CA_FILE")) and "MQTT" in k for k in env)
    # back to plain on purpose after the move (a CA file beside it): not moved again
    plain = BEFORE_TLS | {"CITYOPS_MQTT_CA_FILE": "/etc/ca.crt"}
    assert stack._local_env(plain, tmp_path)["CITYOPS_MQTT_URL"] == "mqtt://127.0.0.1:1884"
    # a county certificate already set for a service is kept
    own = BEFORE_TLS | {"CITYOPS_API_MQTT_CERT_FILE": "/etc/a.crt",
                        "CITYOPS_API_MQTT_KEY_FILE": "/etc/a.key"}
    env = stack._local_env(own, tmp_path)
    assert (env["CITYOPS_API_MQTT_CERT_FILE"], env["CITYOPS_API_MQTT_KEY_FILE"]) == \
        ("/etc/a.crt", "/etc/a.key")


def test_a_wrong_or_missing_certificate_stops_a_service_at_start_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = stack._local_env(dict(BEFORE_TLS), tmp_path)
    monkeypatch.setenv("CITYOPS_ENV_FILE", str(tmp_path / "none.env"))
    monkeypatch.setenv("CITYOPS_INGEST_MQTT_CERT_FILE", str(tmp_path / "missing.crt"))
    with pytest.raises(ConfigError, match=r"CITYOPS_INGEST_MQTT_CERT_FILE: .*no such file"):
        load_settings()

    # the API's key given as its certificate: the API does not start
    wrong = _settings(env, api_mqtt_cert_file=env["CITYOPS_API_MQTT_KEY_FILE"])
    with pytest.raises(ConfigError, match="CITYOPS_API_MQTT_CERT_FILE / CITYOPS_API_MQTT_KEY"):
        MqttLink(wrong, handle=None, on_connect=None)  # type: ignore[arg-type]
    # svc-api's certificate with svc-ingest's key: the ingest worker does not start
    crossed = _settings(env, ingest_mqtt_key_file=env["CITYOPS_API_MQTT_KEY_FILE"])
    with pytest.raises(ConfigError, match="CITYOPS_INGEST_MQTT_CERT_FILE"):
        IngestWorker(crossed, "ingest-1")
    half = _settings(env, ingest_mqtt_key_file=None)
    with pytest.raises(ConfigError, match="CITYOPS_INGEST_MQTT_KEY_FILE is not set"):
        service_tls_context(half, "ingest")
    # no service pair: the shared CITYOPS_MQTT_CERT_FILE pair is used (and named)
    shared = _settings(env, api_mqtt_cert_file=None, api_mqtt_key_file=None,
                       mqtt_cert_file=env["CITYOPS_API_MQTT_KEY_FILE"],
                       mqtt_key_file=env["CITYOPS_API_MQTT_KEY_FILE"])
    with pytest.raises(ConfigError, match="CITYOPS_MQTT_CERT_FILE"):
        service_tls_context(shared, "api")


def test_a_provisioned_agent_on_a_tls_listener_gets_the_ca(tmp_path: Path) -> None:
    env = stack._local_env(dict(BEFORE_TLS), tmp_path)
    on_passwords = agent_broker(_settings(env))
    assert on_passwords == {"edge_agent_config": {"broker": {"url": "mqtt://127.0.0.1:1884"}}}
    on_tls = agent_broker(_settings(env, gateway_mqtt_url="mqtts://127.0.0.1:8884"))
    assert on_tls["edge_agent_config"]["broker"]["url"] == "mqtts://127.0.0.1:8884"
    assert on_tls["gateway_broker_ca"] == (tmp_path / "tls" / "ca.crt").read_text()


def test_the_security_check_reports_the_services_broker_transport(tmp_path: Path) -> None:
    from api.security_check import _broker_item

    env = stack._local_env(dict(BEFORE_TLS), tmp_path)
    item = _broker_item(_settings(env))
    assert item.id == "8.1.3.1-c" and item.passed
    assert "mqtts://127.0.0.1:8884" in item.evidence and "svc-api.crt" in item.evidence
    plain = _broker_item(_settings(BEFORE_TLS))
    assert not plain.passed and plain.evidence.startswith("mqtt://127.0.0.1:1884")
