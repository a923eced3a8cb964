"""The API over HTTPS as `cityops stack up` writes it into local.env (issue #19 item 1): a new
file and one made before both get the local CA's certificate for the API (SAN 127.0.0.1 and
localhost), HTTPS on 8443 and 8080 only redirecting, every value kept; an operator's choice
(a county's own certificate, a TLS proxy, plain on purpose) is left alone."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from cryptography import x509

from cityops.errors import ConfigError
from cityops.settings import Settings
from cityops.tls import api_base_url, api_client_context
from infra.local import stack

BEFORE_HTTPS = {  # a local.env of a stack made before this change (values shortened)
    "CITYOPS_DATABASE_URL": "postgresql://cityops:dbpw@127.0.0.1:5433/cityops",
    "CITYOPS_MQTT_URL": "mqtts://127.0.0.1:8884", "CITYOPS_JWT_SECRET": "jwt",
    "CITYOPS_OWN_EXTRA": "kept",
}
API_KEYS = ("CITYOPS_API_TLS_CERT_FILE", "CITYOPS_API_TLS_KEY_FILE", "CITYOPS_API_CA_FILE",
            "CITYOPS_API_HTTPS", "CITYOPS_API_PORT", "CITYOPS_API_HTTP_REDIRECT_PORT")


def _settings(env: dict[str, str]) -> Settings:
    keys = [k for k in env if k.startswith("CITYOPS_API_")]
    return Settings(_env_file=None, **{k.removeprefix("CITYOPS_").lower(): env[k] for k in keys})


def test_an_older_local_env_gets_https_keeping_its_values(tmp_path: Path) -> None:
    env = stack._local_env(dict(BEFORE_HTTPS), tmp_path)
    for key, value in BEFORE_HTTPS.items():
        assert env[key] == value, key
    assert env["CITYOPS_API_PORT"] == "8443" and env["CITYOPS_API_HTTP_REDIRECT_PORT"] == "8080"
    assert env["CITYOPS_API_HTTPS"] == "true"
    assert env["CITYOPS_API_CA_FILE"] == str((tmp_path / "tls" / "ca.crt").absolute())
    cert = x509.load_pem_x509_certificate(Path(env["CITYOPS_API_TLS_CERT_FILE"]).read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert Path(env["CITYOPS_API_TLS_KEY_FILE"]).stat().st_mode & 0o077 == 0
    issued = Path(env["CITYOPS_API_TLS_CERT_FILE"]).read_bytes()
    assert stack._local_env(env, tmp_path) == env, "the next `stack up` changes nothing"
    assert Path(env["CITYOPS_API_TLS_CERT_FILE"]).read_bytes() == issued, "not re-issued"
    fresh = stack._local_env({}, tmp_path)
    assert all(fresh[k] == env[k] for k in API_KEYS)
    settings = _settings(env)
    assert api_base_url(settings) == "https://127.0.0.1:8443"
    assert api_client_context(settings).verify_mode.name == "CERT_REQUIRED"


def test_an_operators_choice_is_left_alone(tmp_path: Path) -> None:
    county = BEFORE_HTTPS | {"CITYOPS_API_TLS_CERT_FILE": "/etc/cityops/api.crt",
                             "CITYOPS_API_TLS_KEY_FILE": "/etc/cityops/api.key"}
    env = stack._local_env(county, tmp_path)
    assert {k: env.get(k) for k in API_KEYS} == {k: county.get(k) for k in API_KEYS}
    for opted in ("true", "false"):  # a TLS proxy in front, or plain HTTP on purpose
        env = stack._local_env(BEFORE_HTTPS | {"CITYOPS_API_HTTPS": opted}, tmp_path)
        assert "CITYOPS_API_TLS_CERT_FILE" not in env and env["CITYOPS_API_HTTPS"] == opted
    # a port the operator set stays the (now HTTPS) port; 8080 itself redirects nowhere
    env = stack._local_env(BEFORE_HTTPS | {"CITYOPS_API_PORT": "8080"}, tmp_path)
    assert (env["CITYOPS_API_PORT"], env["CITYOPS_API_HTTP_REDIRECT_PORT"]) == ("8080", "0")
    assert api_base_url(_settings(env)) == "https://127.0.0.1:8080"
    assert api_base_url(Settings(_env_file=None)) == "http://127.0.0.1:8080"


def test_a_ca_file_that_is_not_a_ca_fails_naming_the_setting(tmp_path: Path) -> None:
    bad = tmp_path / "ca.crt"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match="CITYOPS_API_CA_FILE"):
        api_client_context(Settings(_env_file=None, api_ca_file=bad))
