"""The API over HTTPS (uvicorn's own TLS) and, beside it, a plain-HTTP port that only
redirects to it (docs/operations.md, "Encryption in transit")."""

from __future__ import annotations

import threading

import uvicorn

from cityops.errors import ConfigError
from cityops.settings import Settings


def tls_options(settings: Settings) -> dict[str, str]:
    """uvicorn's TLS options when a certificate is configured (the local CA's or the
    county's own), else none: plain HTTP, for a TLS proxy in front."""
    cert, key = settings.api_tls_cert_file, settings.api_tls_key_file
    if not cert and not key:
        return {}
    if not (cert and key and cert.is_file() and key.is_file()):
        raise ConfigError("CITYOPS_API_TLS_CERT_FILE and CITYOPS_API_TLS_KEY_FILE must both "
                          f"name readable files (got {cert}, {key})")
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


def redirect_app(https_port: int):
    """An ASGI app answering every request with 308 to the same path on the HTTPS port."""

    async def app(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        host = dict(scope["headers"]).get(b"host", b"127.0.0.1").decode("latin-1")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        target = f"https://{name}:{https_port}{scope['path']}"
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        await send({"type": "http.response.start", "status": 308,
                    "headers": [(b"location", target.encode()), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    return app


def start_redirect(settings: Settings, https_port: int) -> uvicorn.Server | None:
    """The redirecting port in a thread of this process, when one is configured."""
    if not settings.api_http_redirect_port or not tls_options(settings):
        return None
    server = uvicorn.Server(uvicorn.Config(redirect_app(https_port), host=settings.api_host,
                                           port=settings.api_http_redirect_port,
                                           log_level="warning", access_log=False))
    threading.Thread(target=server.run, name="https-redirect", daemon=True).start()
    return server
