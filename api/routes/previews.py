"""A catalogue file's preview: images and PDF as they are, office files as the PDF LibreOffice
made of them in the background (datafoundation/catalogue/previews.py). While it converts the
answer is 202 {code: converting}; a file it could not convert is 422 {code: preview_failed}
with the reason, and the original stays downloadable. Every preview served is audited."""

from __future__ import annotations

from pathlib import PurePath

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from api.deps import Conn, client_address, require
from api.errors import error_body
from api.middleware import write_audit_conn
from api.routes.catalogue import PEOPLE, Caller, Code
from api.routes.event_views import Now
from cityops.errors import InvalidInput
from datafoundation.catalogue import objects, portal, previews, resources

router = APIRouter(tags=["catalogue"])
ACTION = "GET /v1/catalogue/resources/{code}/attachments/{object_id}/preview"


@router.get("/v1/catalogue/resources/{code}/attachments/{object_id}/preview",
            response_class=Response, dependencies=[Depends(require(*PEOPLE))], responses={
                200: {"content": {"application/pdf": {}, "image/*": {}}},
                202: {"description": "an office file being converted to PDF: ask again"},
                422: {"description": "no preview: the file's type, or LibreOffice failed"}})
async def preview(code: Code, object_id: int, conn: Conn, caller: Caller, now: Now,
                  request: Request) -> Response:
    resource = await resources.get(conn, code)
    await portal.may_read(conn, caller, resource, now)
    meta, blob = await objects.fetch(conn, "resource", code, object_id)
    kind, name = meta["content_type"], meta["filename"]
    if kind not in objects.INLINE_TYPES:
        if kind not in previews.OFFICE_TYPES:
            raise InvalidInput(f"{name}: {kind} has no preview; download the file")
        found = await previews.state(conn, meta["sha256"], with_pdf=True)
        if found is None or found["state"] == "converting":
            # started again if a stopped process left it
            await previews.ask(conn, previews.runner_for(request.app.state), meta)
            return JSONResponse(error_body("converting", f"{name} is being converted to PDF"),
                                202, headers={"Retry-After": "2"})
        if found["state"] == "failed":
            return JSONResponse(error_body("preview_failed", f"{name}: {found['reason']}"), 422)
        blob, kind, name = bytes(found["pdf"]), "application/pdf", f"{PurePath(name).stem}.pdf"
    await write_audit_conn(
        conn, actor=caller.name, actor_kind=caller.kind, role=caller.role.value, action=ACTION,
        target=request.url.path, source=client_address(request), outcome="ok", status=200,
        detail={"filename": meta["filename"], "content_type": meta["content_type"],
                "served_as": kind, "size_bytes": len(blob)})
    return Response(blob, media_type=kind, headers={
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": objects.disposition(name, kind)})
