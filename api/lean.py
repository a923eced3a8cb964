"""Hot authenticated GETs answered without FastAPI's per-request machinery (issue #21).

A small read such as one device's latest values cost ~1.3 ms of API CPU per request, of which
the query was a sixth: the rest was Starlette's routing, FastAPI's dependency solving (a
task-local exit stack, an anyio cancel scope and a cache key per dependency), the response
model built and validated, and the response object (py-spy profile, docs/api.md). A route
listed here is still declared as a FastAPI route (its OpenAPI entry, its role check), and a
GET that matches it is answered here by the same steps the route's dependencies take, in
the same order, with the same functions:

1. who: `api.deps.get_principal` with the Authorization / X-API-Key headers read as
   FastAPI's security schemes read them (the first of a repeated header);
2. may they: the route's own `require(...)` check (role, API key scope, department guard),
   found in the route's dependencies, so the roles are where the route declares them;
3. the answer: the route's `LeanGet.answer`, which the FastAPI route itself also calls.

Errors go through the app's own exception handlers (one error shape); anything else is
raised to Starlette's last-resort 500. The middlewares outside this one (security headers,
audit and metering, the request guard) see the request as before: the principal is left on
the request state and the route's template in the scope, where they look for them.

A route is only taken over if everything its dependencies run is one of the steps above:
a dependency added to the route later (a rate limit, a feature flag) that this path would
skip makes the app refuse to serve instead (ConfigError at the first request), never a
silent bypass. Only GET: HEAD, a path whose parameter does not match the route's pattern,
a query its parser does not take (`simple_query`: unknown, repeated or invalid; FastAPI
answers 422) and any other method go on to FastAPI unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import ASGIApp, Receive, Scope, Send

from cityops.errors import ConfigError
from cityops.principal import Principal

# what an answer function gets: the request, the admitted caller, the path's parameters
# (and the query's, parsed); it gives the JSON body of a 200, or a response of its own
Answer = Callable[[Request, Principal, dict[str, Any]], Awaitable[bytes | Response]]
# the query string's parameters, or None to leave the request to FastAPI (its 422)
QueryParser = Callable[[str], dict[str, Any] | None]
_JSON = (b"content-type", b"application/json")


@dataclass(frozen=True)
class LeanGet:
    template: str  # the FastAPI route's path, e.g. "/v1/devices/{device}/latest"
    params: dict[str, str]  # each path parameter's pattern, as the route's Path() declares it
    answer: Answer
    query: QueryParser | None = None  # none: the query string is not read (as the route)


def simple_query(texts: dict[str, str], ints: dict[str, tuple[int, int, int]]) -> QueryParser:
    """A parser for a route whose query parameters are optional scalars, as its Query()
    declares them: `texts` by pattern, `ints` by (default, least, most). Each at most once;
    an unknown, repeated, blank or invalid one leaves the request to FastAPI, which answers
    the same or its 422 (tests/integration/test_api_lean.py holds the two paths equal)."""
    patterns = {name: re.compile(pattern) for name, pattern in texts.items()}

    def parse(raw: str) -> dict[str, Any] | None:
        found: dict[str, Any] = dict.fromkeys(patterns) | {k: v[0] for k, v in ints.items()}
        seen: set[str] = set()
        for name, value in parse_qsl(raw, keep_blank_values=True):
            if name in seen or not value:
                return None
            seen.add(name)
            if name in patterns and patterns[name].fullmatch(value):
                found[name] = value
            elif name in ints and value.isascii() and value.isdigit() and (
                    ints[name][1] <= int(value) <= ints[name][2]):
                found[name] = int(value)
            else:
                return None
        return found
    return parse


@dataclass(frozen=True)
class _Ready:
    lean: LeanGet
    path: re.Pattern[str]
    params: dict[str, re.Pattern[str]]
    context: Any  # the route as api.docs.route_template finds it in the scope
    check: Callable[..., Awaitable[Principal]]  # the route's require(...) dependency


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of a header, as Starlette's `request.headers.get` gives it."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def authenticate(scope: Scope) -> Principal:
    """The caller as `api.deps.get_principal` finds it from the route's security schemes
    (OAuth2PasswordBearer and APIKeyHeader, auto_error off); it is left on the request
    state, where the audit log and the metering find it."""
    from api.deps import get_principal  # api.deps imports the routes' services

    scheme, token = get_authorization_scheme_param(_header(scope, b"authorization"))
    api_key = _header(scope, b"x-api-key") or None
    return await get_principal(Request(scope), scope["app"].state.settings,
                               token if scheme.lower() == "bearer" and token else None,
                               api_key)


def _calls(dependant: Any) -> list[Any]:
    found = []
    for sub in dependant.dependencies:
        found.append(sub.call)
        found.extend(_calls(sub))
    return found


def _prepare(app: FastAPI, lean: LeanGet) -> _Ready:
    from api import deps
    from api.docs import api_routes

    context = next((r for r in api_routes(app) if r.path_format == lean.template
                    and "GET" in (r.methods or ())), None)
    if context is None:
        raise ConfigError(f"lean GET {lean.template}: no such route")
    calls = _calls(context.dependant)
    checks = [c for c in calls if getattr(c, "allowed_roles", None) is not None]
    known = {deps.get_principal, deps.settings_now, deps.oauth2, deps.api_key_header, *checks}
    others = [getattr(c, "__name__", repr(c)) for c in calls if c not in known]
    if len(checks) != 1 or others:
        raise ConfigError(f"lean GET {lean.template}: the route runs {others or 'no role check'}"
                          " besides one role check and the caller: serve it through FastAPI")
    path = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", lean.template) + "$")
    if set(path.groupindex) != set(lean.params):
        raise ConfigError(f"lean GET {lean.template}: patterns for {sorted(lean.params)}")
    return _Ready(lean, path, {k: re.compile(v) for k, v in lean.params.items()}, context,
                  checks[0])


def _handler(app: FastAPI, err: Exception) -> Callable[..., Awaitable[Any]] | None:
    """The app's handler of this error, as Starlette's ExceptionMiddleware looks it up; the
    catch-all (Exception) is left to the last-resort middleware, which also logs it."""
    for cls in type(err).__mro__:
        if cls is Exception:
            return None
        found = app.exception_handlers.get(cls)
        if found is not None:
            return found
    return None


class LeanReads:
    def __init__(self, app: ASGIApp, gets: tuple[LeanGet, ...] = ()) -> None:
        self.app = app
        self.gets = gets
        self._ready: list[_Ready] | None = None
        self.served = 0  # answers given here, not by FastAPI (tests, diagnostics)

    def _prepared(self, app: FastAPI) -> list[_Ready]:
        if self._ready is None:
            self._ready = [_prepare(app, lean) for lean in self.gets]
            app.state.lean_reads = self
        return self._ready

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # at start-up (a bad route fails it), with what it
            self._prepared(scope["app"])  # made, out of the collector's walks (api/main.py)
        elif scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            for ready in self._prepared(scope["app"]):  # at the first request without lifespan
                match = ready.path.match(scope["path"])
                if match is None or not all(ready.params[k].fullmatch(v)
                                            for k, v in match.groupdict().items()):
                    continue
                query = ready.lean.query
                parsed = {} if query is None else query(scope["query_string"].decode("latin-1"))
                if parsed is not None:
                    await self._serve(ready, match.groupdict(), parsed, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _serve(self, ready: _Ready, params: dict[str, str], query: dict[str, Any],
                     scope: Scope, receive: Receive, send: Send) -> None:
        scope["path_params"] = params
        scope.setdefault("fastapi", {})["effective_route_context"] = ready.context
        request = Request(scope)
        self.served += 1
        try:
            principal = await authenticate(scope)
            await ready.check(request, principal)
            body = await ready.lean.answer(request, principal, params | query)
        except Exception as err:
            handler = _handler(scope["app"], err)
            if handler is None:
                raise
            response = await handler(request, err)
            await response(scope, receive, send)
            return
        if isinstance(body, Response):
            await body(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [_JSON, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
