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
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if cert_file or key_file:
        if not (cert_file and key_file):
            raise ConfigError("a client certificate needs both cert_file and key_file")
        try:
            context.load_cert_chain(str(cert_file), str(key_file))
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(f"client certificate {cert_file}: {err}") from err
    return context


def service_tls_context(settings) -> ssl.SSLContext | None:
    """The platform's services to an mqtts:// broker: verified against `mqtt_ca_file`, with
    the service's certificate (common name svc-ingest or svc-api) where the listener takes
    identities from certificates; None for plain mqtt://."""
    if not settings.mqtt_url.startswith("mqtts:"):
        return None
    return client_tls_context(settings.mqtt_ca_file, settings.mqtt_cert_file,
                              settings.mqtt_key_file)
