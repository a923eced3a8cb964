"""What every request passes before the app reads a byte of its body (issue #22, item 3).

- Size: each route has a body limit: small JSON routes `JSON_BODY_MAX_BYTES`, routes that take
  files (a multipart upload, or a text/csv body) `CITYOPS_UPLOAD_MAX_BYTES` plus the multipart
  framing. A declared Content-Length over it is answered 413 at once, unread; a chunked body
  (or one longer than it said) is counted while the app reads it and cut at the limit (413).
- Who: a request carrying a body to a route that needs a login is authenticated first, so an
  anonymous or badly signed 300 MiB upload costs one header read and a 401, not 300 MiB.
- Methods: a path that is a route of its own (`/v1/devices/import`) answers 405 with `Allow`
  for any other method, instead of falling into a parameterised sibling
  (`/v1/devices/{device}`) that would answer 404 or 422.
- Every answer carries `X-Content-Type-Options: nosniff`, so a browser never runs a
  downloaded CSV or an uploaded file as HTML or script.

Plain ASGI, like api.middleware: a streaming answer (Server-Sent Events) passes untouched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import FastAPI, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.params import File
from fastapi.responses import JSONResponse, Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.docs import allowed_roles, api_routes
from api.errors import error_body, platform_error
from api.lean import authenticate
from cityops.errors import PlatformError

JSON_BODY_MAX_BYTES = 1024 * 1024
MULTIPART_SLACK_BYTES = 64 * 1024  # boundaries and part headers around an upload's bytes
NOSNIFF = (b"x-content-type-options", b"nosniff")


@dataclass(frozen=True)
class RouteRule:
    template: str
    pattern: re.Pattern[str]
    methods: frozenset[str]
    max_bytes: int
    public: bool


def takes_upload(dependant: Dependant) -> bool:
    """True for a route whose body is a file: an UploadFile/File field or a text body."""
    for param in dependant.body_params:
        info = param.field_info
        if isinstance(info, File) or getattr(info, "media_type", "").startswith("text/"):
            return True
    return any(takes_upload(sub) for sub in dependant.dependencies)


def build_rules(app: FastAPI) -> tuple[list[RouteRule], dict[str, frozenset[str]]]:
    """Every route's rule, and the methods of each literal (parameter-less) path."""
    upload_max = app.state.settings.upload_max_bytes + MULTIPART_SLACK_BYTES
    rules: list[RouteRule] = []
    literal: dict[str, set[str]] = {}
    for route in api_routes(app):
        template, methods = route.path_format, frozenset(route.methods or ())
        rules.append(RouteRule(
            template, compile_path(template)[0], methods,
            upload_max if takes_upload(route.dependant) else JSON_BODY_MAX_BYTES,
            allowed_roles(route.dependant) is None,
        ))
        if "{" not in template:
            literal.setdefault(template, set()).update(methods)
    return rules, {path: frozenset(m) for path, m in literal.items()}


def _error(status: int, code: str, detail: str, headers: dict[str, str] | None = None
           ) -> Response:
    return JSONResponse(error_body(code, detail), status, headers=headers)


def _declared_length(headers: dict[bytes, bytes]) -> int | None:
    try:
        return int(headers[b"content-length"])
    except (KeyError, ValueError):
        return None


class RequestGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._rules: tuple[list[RouteRule], dict[str, frozenset[str]]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self._rules is None:
                # at start-up, not on the first request: walking the routes makes FastAPI
                # build ~47,000 objects it keeps, which then belong with what start-up made
                # (api/main.py freezes those out of the garbage collector's walks)
                self._rules = build_rules(scope["app"])
            await self.app(scope, receive, send)
            return

        async def send_nosniff(message: Message) -> None:
            if message["type"] == "http.response.start":
                drop = {NOSNIFF[0], b"allow"} if message["status"] == 405 else {NOSNIFF[0]}
                headers = [h for h in message.get("headers", []) if h[0].lower() not in drop]
                headers.append(NOSNIFF)
                if message["status"] == 405:  # Starlette names the first matching route's only
                    headers.append((b"allow", self._allow(scope["path"]).encode()))
                message = {**message, "headers": headers}
            await send(message)

        refusal, rule = await self._check(scope)
        if refusal is not None:
            await refusal(scope, receive, send_nosniff)
            return
        if rule is not None:
            receive = _counted(receive, rule, scope["method"])
        await self.app(scope, receive, send_nosniff)

    def _allow(self, path: str) -> str:
        """The methods of the path's own route, else every method a route takes on it."""
        rules, literal = self._rules or ([], {})
        methods = literal.get(path) or {m for r in rules if r.pattern.match(path)
                                        for m in r.methods}
        return ", ".join(sorted(methods))

    async def _check(self, scope: Scope) -> tuple[Response | None, RouteRule | None]:
        """(a refusal to send instead of calling the app, or None; the matched route)."""
        if self._rules is None:  # built once the app is complete, on its first request
            self._rules = build_rules(scope["app"])
        rules, literal = self._rules
        method, path = scope["method"], scope["path"]
        allowed = literal.get(path)
        if allowed is not None and method not in allowed:
            return _error(405, "method_not_allowed", f"{method} is not allowed on {path}",
                          {"Allow": ", ".join(sorted(allowed))}), None
        headers = dict(scope.get("headers", []))
        length = _declared_length(headers)
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        if not chunked and not length:
            return None, None  # no body: nothing to guard
        rule = next((r for r in rules if method in r.methods and r.pattern.match(path)), None)
        if rule is None:
            return None, None  # the router answers 404/405 without reading the body
        if not rule.public:  # who first: an anonymous caller learns nothing of the limits
            try:
                await authenticate(scope)  # as the route would: api/lean.py
            except PlatformError as err:  # 401, or 429 after too many failed attempts
                return await platform_error(Request(scope), err), None
        if length is not None and length > rule.max_bytes:
            return _error(413, "too_large", f"the body is {length} bytes; {method} "
                          f"{rule.template} accepts at most {rule.max_bytes}"), None
        return None, rule


def _counted(receive: Receive, rule: RouteRule, method: str) -> Receive:
    """`receive` that stops a body at the route's limit, whatever its Content-Length said."""
    received = 0

    async def guarded() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > rule.max_bytes:
                # FastAPI re-raises an HTTPException met while reading a body; api.errors
                # answers it as {"code": "too_large", ...}
                raise HTTPException(413, f"the body is over {rule.max_bytes} bytes; {method} "
                                         f"{rule.template} accepts at most {rule.max_bytes}")
        return message

    return guarded
