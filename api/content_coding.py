"""Compressed answers for the clients that ask for them (RFC 9110 §12.5.3 Accept-Encoding).

Browsers, the console and most HTTP clients send `Accept-Encoding: gzip`; an answer the API
keeps ready (the latest of 1,000 devices: 0.5 MB of JSON, ~60 KB gzipped; a map tile) is
compressed once when it is computed and sent as it is to every such client.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from fastapi.responses import Response


def accepts_gzip(header: str | None) -> bool:
    """Whether an Accept-Encoding header admits gzip: named (or `*`) without `q=0`."""
    for coding in (header or "").split(","):
        name, _, params = coding.partition(";")
        if name.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        weight = params.strip().lower()
        if weight.startswith("q="):
            try:
                return float(weight[2:]) > 0
            except ValueError:
                return False  # a malformed weight: as if not offered
        return True
    return False


def packed_or_plain(request: Request, packed: bytes | None,
                    plain: bytes | Callable[[], bytes], media_type: str,
                    headers: dict[str, str] | None = None) -> Response:
    """The gzipped body (if there is one) to a client that accepts gzip, the plain one (made
    only then, when given as a function) to any other; `Vary: Accept-Encoding` on both."""
    headers = {**(headers or {}), "Vary": "Accept-Encoding"}
    if packed is not None and accepts_gzip(request.headers.get("accept-encoding")):
        return Response(packed, media_type=media_type,
                        headers={**headers, "Content-Encoding": "gzip"})
    return Response(plain() if callable(plain) else plain, media_type=media_type,
                    headers=headers)
