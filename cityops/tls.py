"""TLS contexts for clients of the broker (no paho here: the ingest worker's lean session
imports this too). The CA and certificates are the local CA's (infra/tls/ca.py) or the
county's own (docs/operations.md, "Encryption in transit")."""

from __future__ import annotations

import ssl
from pathlib import Path

from cityops.errors import ConfigError


def client_tls_context(ca_file: Path | None = None, cert_file: Path | None = None,
                       key_file: Path | None = None) -> ssl.SSLContext:
    """TLS to a broker that must prove itself: against `ca_file`, else the system's CAs;
    with a client certificate when the broker asks for one (per-gateway certificates)."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"CA file {ca_file}: {err}") from err
    if cert_file or key_file:
        if not (cert_file and key_file):
            raise ConfigError("a client certificate needs both cert_file and key_file")
        try:
            context.load_cert_chain(str(cert_file), str(key_file))
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(f"client certificate {cert_file}: {err}") from err
    return context


# the services that connect to the broker, and the prefix of their settings
SERVICES = ("ingest", "api")


def service_identity(settings, service: str) -> tuple[tuple[str, Path | None],
                                                       tuple[str, Path | None]]:
    """The (setting, path) of the service's certificate and key: its own pair if either is
    set (CITYOPS_INGEST_MQTT_CERT_FILE...), else the shared CITYOPS_MQTT_CERT_FILE pair."""
    if service not in SERVICES:
        raise ConfigError(f"unknown service {service!r}: one of {SERVICES}")
    own = (f"{service}_mqtt_cert_file", f"{service}_mqtt_key_file")
    if getattr(settings, own[0]) is None and getattr(settings, own[1]) is None:
        own = ("mqtt_cert_file", "mqtt_key_file")
    return tuple((name, getattr(settings, name)) for name in own)  # type: ignore[return-value]


def service_tls_context(settings, service: str) -> ssl.SSLContext | None:
    """The platform's services to an mqtts:// broker: verified against `mqtt_ca_file`, with
    the service's own certificate (common name svc-ingest or svc-api) where the listener takes
    identities from certificates; None for plain mqtt://. Built once at the service's start,
    so a wrong file fails it with the setting's name."""
    if not settings.mqtt_url.startswith("mqtts:"):
        return None
    (cert_name, cert), (key_name, key) = service_identity(settings, service)
    if bool(cert) != bool(key):
        missing = key_name if cert else cert_name
        raise ConfigError(f"CITYOPS_{missing.upper()} is not set: a client certificate "
                          "needs both its certificate and its key file")
    try:
        context = client_tls_context(settings.mqtt_ca_file)
    except ConfigError as err:
        raise ConfigError(f"CITYOPS_MQTT_CA_FILE: {err.detail}") from err
    if cert and key:
        try:
            context.load_cert_chain(str(cert), str(key))
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(f"CITYOPS_{cert_name.upper()} / CITYOPS_{key_name.upper()}: "
                              f"not a certificate and its key ({err})") from err
    return context


# -- clients of the platform's own API (`cityops security check`, the demo's announcement)
def api_base_url(settings) -> str:
    """Where the API answers on this host: https when it serves TLS itself."""
    scheme = "https" if settings.api_tls_cert_file else "http"
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "") else settings.api_host
    return f"{scheme}://{host}:{settings.api_port}"


def api_client_context(settings) -> ssl.SSLContext:
    """Verification of the API's certificate against `api_ca_file` (the local CA), else the
    system's CAs: trusted, never switched off."""
    try:
        return ssl.create_default_context(
            cafile=str(settings.api_ca_file) if settings.api_ca_file else None)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"CITYOPS_API_CA_FILE {settings.api_ca_file}: {err}") from err
