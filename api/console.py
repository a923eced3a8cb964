"""The command-centre console: the front end built into api/web/dist by `make web` (vite),
served by the API itself so the wall and the desks need nothing but this address.

The hashed files under /assets are cached for good; index.html is answered for `/` and for
each of the console's own paths (a reload or a shared link of /devices/meter-01 works) and is
never cached, so a new build shows at the next load. Without a build the console's paths
answer a page saying how to make one, instead of a bare 404.
"""

from __future__ import annotations

from pathlib import Path

import anyio
from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

DIST = Path(__file__).parent / "web" / "dist"
# the client-side routes of api/web/src/lib/router.js
PAGES = ("/", "/devices", "/devices/{device}", "/control", "/alarms", "/events",
         "/events/{event}", "/cloud", "/data", "/map", "/network", "/decisions", "/admin",
         "/desk",  # 部门工作台 (issue 18)
         # 城管通, the phone pages (api/web/src/field/); "/m" redirects to "/m/", the start of
         # the installed app, so that the page is inside its service worker's scope
         "/m/", "/m/{tab}", "/m/{tab}/{case}")
# the field app's installable parts, built into dist/m/ (api/web/scripts/fieldApp.mjs): the
# service worker is served from /m/ so that its scope is /m/
FIELD_FILES = {"manifest.webmanifest": "application/manifest+json",
               "sw.js": "text/javascript", "icon.svg": "image/svg+xml",
               "icon-192.png": "image/png", "icon-512.png": "image/png"}
# the console talks only to this origin: no CDN, no web font, nothing else at run time
CSP = ("default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "style-src 'self' 'unsafe-inline'; font-src 'self'; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'")
NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>CityOps console not built</title></head>
<body style="font:16px system-ui;background:#060e1a;color:#eaf2ff;padding:48px">
<h1>The console has not been built</h1>
<p>The API is running, but <code>api/web/dist/</code> is missing. Build the console with</p>
<pre style="background:#0d1b30;padding:12px">make web</pre>
<p>(it runs <code>npm ci</code> and <code>npm run build</code> in <code>api/web</code>), then
reload this page. The API itself is at <a style="color:#2bd4ff" href="/docs">/docs</a>.</p>
</body></html>"""


class _Assets(StaticFiles):
    """Vite names files by their content hash: a browser may keep them for good."""

    async def check_config(self) -> None:
        # no build yet: a 404 per asset (the pages say how to build), not a server error
        directory = Path(self.directory or "")
        if await anyio.to_thread.run_sync(directory.is_dir):
            await super().check_config()

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def _field_file(path: Path, media_type: str):
    async def field_file() -> Response:
        if not await anyio.to_thread.run_sync(path.is_file):
            return HTMLResponse(NOT_BUILT, status_code=503)
        # not cached: a new service worker or manifest is picked up at the next visit
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache"})

    return field_file


def install_console(app: FastAPI, dist: Path = DIST) -> None:
    # check_dir=False: the app starts without a build and says so on the console's pages
    app.mount("/assets", _Assets(directory=dist / "assets", check_dir=False), name="console")

    async def page() -> Response:
        index = dist / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, status_code=503)
        return FileResponse(index, headers={"Cache-Control": "no-cache",
                                            "Content-Security-Policy": CSP})

    app.add_api_route("/m", lambda: RedirectResponse("/m/", status_code=308), methods=["GET"],
                      include_in_schema=False)
    for name, media_type in FIELD_FILES.items():  # before /m/{tab}, which would take them
        app.add_api_route(f"/m/{name}", _field_file(dist / "m" / name, media_type),
                          methods=["GET"], include_in_schema=False)

    for path in PAGES:
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False,
                          response_class=HTMLResponse)
