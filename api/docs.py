"""/docs: Swagger UI served from the app itself, never from a CDN; and the OpenAPI document
with each operation's allowed roles (`x-roles`) and errors (api/openapi_errors.py).

The document is OpenAPI 3.1, which Swagger UI renders from version 5 on: the viewer is npm's
swagger-ui-dist, pinned in api/docs_viewer/package-lock.json and installed by `make web`
(the swagger-ui-bundle wheel carried Swagger UI 4, which answered "Unable to render this
definition" for 3.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from api.headers import inline_script_csp
from api.openapi_errors import declare_errors

ASSETS = "/docs/assets"
VIEWER = Path(__file__).parent / "docs_viewer" / "node_modules" / "swagger-ui-dist"
NOT_INSTALLED = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>API viewer not installed</title></head><body style="font:16px system-ui;padding:48px">
<h1>The API viewer is not installed</h1><p>Run <code>make web</code> (it installs
<code>api/docs_viewer</code>'s npm package). The document itself is at
<a href="/openapi.json">/openapi.json</a>.</p></body></html>"""
PUBLIC = "public: no login needed"


def allowed_roles(dependant: Dependant) -> frozenset[str] | None:
    """The roles a route's `require(...)` dependency admits, wherever it sits."""
    for sub in dependant.dependencies:
        roles = getattr(sub.call, "allowed_roles", None)
        if roles is not None:
            return frozenset(r.value for r in roles)
        found = allowed_roles(sub)
        if found is not None:
            return found
    return None


def api_routes(app: FastAPI) -> list[Any]:
    """Every API route with its full path and all its dependencies. FastAPI 0.16x keeps
    included routers as such and exposes their routes through route contexts."""
    contexts = getattr(routing, "iter_route_contexts", None)
    if contexts is None:
        return [r for r in app.routes if isinstance(r, APIRoute)]
    return [c for c in contexts(app.routes) if isinstance(c.original_route, APIRoute)]


def route_template(scope: dict[str, Any]) -> str:
    """The matched route's path template ("/v1/devices/{device}"), else the raw path."""
    context = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(context, "path_format", None) or getattr(scope.get("route"), "path", None)
    return template or scope["path"]


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes, tags=app.openapi_tags)
    for route in api_routes(app):
        if not route.include_in_schema:
            continue
        roles = allowed_roles(route.dependant)
        for method in route.methods:
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            if roles is None:
                operation["x-public"] = True
            else:
                operation["x-roles"] = sorted(roles)
            who = ", ".join(sorted(roles)) if roles is not None else PUBLIC
            operation["description"] = (operation.get("description", "") +
                                        f"\n\n**Roles:** {who}").strip()
    declare_errors(schema, {})  # every operation's error statuses, one schema
    app.openapi_schema = schema
    return schema


def install_docs(app: FastAPI, viewer: Path = VIEWER) -> None:
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    if viewer.is_dir():  # without the npm package the API still starts and /docs says why
        app.mount(ASSETS, StaticFiles(directory=viewer), name="docs")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if not (viewer / "swagger-ui-bundle.js").is_file():
            return HTMLResponse(NOT_INSTALLED, status_code=503)
        return inline_script_csp(get_swagger_ui_html(  # its one inline script by hash
            openapi_url="/openapi.json", title=f"{app.title}: API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
            # tags closed: with all 141 operations listed at once Swagger UI 5 stopped after
            # the tenth in Chromium (docs/api.md); each tag opens with all of its operations
            swagger_ui_parameters={"docExpansion": "none"},
        ))

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return inline_script_csp(get_swagger_ui_oauth2_redirect_html())
