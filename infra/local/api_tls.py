"""The API over HTTPS by default on the local stack (issue #19 item 1): `stack up` has the
local CA issue the API's server certificate and writes the settings into local.env, so
`cityops api` serves HTTPS itself and its former plain port only redirects there
(docs/operations.md, "Encryption in transit")."""

from __future__ import annotations

from pathlib import Path

from infra.tls.ca import LocalCA

# HTTPS on 8443; the demo's former plain port 8080 now only redirects to it, so an old
# bookmark still arrives (both clear of Patroni's REST 8441/8442 and the lab's 2xxxx)
API_HTTPS_PORT = 8443
API_REDIRECT_PORT = 8080
API_HOSTS = ["127.0.0.1", "localhost"]
# a local.env already naming one of these was set up by an operator (a county's own
# certificate, a TLS proxy in front with CITYOPS_API_HTTPS, or plain HTTP on purpose with
# CITYOPS_API_HTTPS=false): it is left as it is
OPERATOR_KEYS = ("CITYOPS_API_TLS_CERT_FILE", "CITYOPS_API_TLS_KEY_FILE", "CITYOPS_API_HTTPS")


def api_tls_env(existing: dict[str, str], state_dir: Path) -> dict[str, str]:
    """The keys to add for HTTPS with the local CA's certificate; none when the operator has
    chosen already. A port already set (CITYOPS_API_PORT) stays the HTTPS port."""
    if any(key in existing for key in OPERATOR_KEYS):
        return {}
    ca = LocalCA(state_dir / "tls").ensure()
    # its own pair (not the broker's and PostgreSQL's server.crt): a county can replace the
    # API's certificate alone
    issued = ca.server(API_HOSTS, name="api")
    port = int(existing.get("CITYOPS_API_PORT", API_HTTPS_PORT))
    redirect = existing.get("CITYOPS_API_HTTP_REDIRECT_PORT")
    if redirect is None:
        redirect = "0" if port == API_REDIRECT_PORT else str(API_REDIRECT_PORT)
    return {
        "CITYOPS_API_TLS_CERT_FILE": str(issued.cert.absolute()),
        "CITYOPS_API_TLS_KEY_FILE": str(issued.key.absolute()),
        "CITYOPS_API_CA_FILE": str(ca.cert_path.absolute()),
        "CITYOPS_API_HTTPS": "true",  # HSTS on every answer
        "CITYOPS_API_PORT": str(port),
        "CITYOPS_API_HTTP_REDIRECT_PORT": redirect,
    }
