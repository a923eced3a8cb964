"""Security headers on every answer (等保 level 3 hardening, docs/security.md).

- Content-Security-Policy: scripts only from the platform itself (the console's bundle,
  Swagger UI's files); no plugins; no framing (`frame-ancestors 'none'`, and X-Frame-Options
  for older browsers); styles may be inline (Vue and ECharts set element styles); images,
  fonts and workers also from `data:`/`blob:` (the map draws its tiles in a blob worker).
  A page with an inline script of its own (/docs) carries its own policy naming that script's
  hash (`inline_script_csp`), which this middleware leaves in place.
- Referrer-Policy, Permissions-Policy (no camera or microphone; position for the platform's
  own pages only), Cross-Origin-Opener-Policy.
- Strict-Transport-Security when the API is reached over HTTPS (`CITYOPS_API_HTTPS`).
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'self'; script-src 'self'{extra}; style-src 'self' 'unsafe-inline';"
       " img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self';"
       " worker-src 'self' blob:; child-src 'self' blob:; object-src 'none';"
       " base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
FIXED = [
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), payment=(), usb=(), geolocation=(self)"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def inline_script_csp(response: HTMLResponse) -> HTMLResponse:
    """The page's own policy: its inline scripts allowed by their SHA-256, nothing else."""
    hashes = [base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
              for body in _SCRIPT.findall(bytes(response.body).decode())]
    extra = "".join(f" 'sha256-{h}'" for h in hashes)
    response.headers["content-security-policy"] = CSP.format(extra=extra)
    return response


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._csp = (b"content-security-policy", CSP.format(extra="").encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope["app"].state.settings.api_https or scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                extra = [*FIXED, *([HSTS] if https else [])]
                if self._csp[0] not in names:
                    extra.append(self._csp)
                message = {**message, "headers": headers + [h for h in extra
                                                            if h[0] not in names]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
