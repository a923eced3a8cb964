"""The data-resource catalogue and its portal: browse and search, register resources, apply
for access, the provider's decision, keys, revocation, the data itself, attached files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, File, Path, Query, Request, UploadFile
from fastapi.responses import Response

from api.deps import Conn, client_address, get_principal, get_settings, require
from api.middleware import write_audit_conn
from api.routes.event_views import Calendar, Now
from api.schemas.catalogue import (
    ApplicationIn,
    Applied,
    ApproveIn,
    Classification,
    DataOut,
    DecisionIn,
    DeskOut,
    GrantOut,
    KeyOut,
    RequestOut,
    ResourceEdit,
    ResourceIn,
    ResourceOut,
    Revoked,
    RevokeIn,
)
from api.schemas.events import AttachmentOut
from cityops.errors import Forbidden, InvalidInput
from cityops.principal import Principal, Role
from cityops.settings import Settings
from datafoundation.catalogue import data, objects, portal, previews, resources
from datafoundation.catalogue import queries as q
from datafoundation.dashboards import usage
from datafoundation.dashboards.export import CSV_RESPONSE, Format, csv_response
from datafoundation.services import grants

router = APIRouter(tags=["catalogue"])
Caller = Annotated[Principal, Depends(get_principal)]
Code = Annotated[str, Path(max_length=64, examples=["5.02.001-0001"])]
PEOPLE = (Role.DISPATCHER, Role.DEPARTMENT_STAFF, Role.OPERATOR, Role.OPS_ENGINEER,
          Role.FIELD_TECHNICIAN, Role.VIEWER)
APPLICANTS = (Role.DISPATCHER, Role.DEPARTMENT_STAFF, Role.OPERATOR, Role.OPS_ENGINEER)
PROVIDERS = (Role.DEPARTMENT_STAFF,)
DECIDED = {409: {"description": "decided already (by someone else)"}}


def _roles(*roles: Role) -> list:
    return [Depends(require(*roles))]


def _request_out(row: dict, now: datetime) -> RequestOut:
    due = row["provider_due_at"]
    overdue = row["state"] == "with_provider" and due is not None and now > due
    return RequestOut.model_validate({**row, "overdue": overdue})


@router.get("/v1/catalogue/resources", response_model=list[ResourceOut], responses=CSV_RESPONSE,
            dependencies=_roles(*PEOPLE))
async def search(
    conn: Conn, now: Now,
    q_: Annotated[str | None, Query(alias="q", max_length=100)] = None,
    provider_id: str | None = None, sharing_type: str | None = None,
    open_to_public: bool | None = None, source_kind: str | None = None,
    classification: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0, format: Format = "json",
) -> list[ResourceOut] | Response:
    """Browse and search; the platform's own datasets are registered on the way."""
    await resources.sync_platform(conn, now)
    filters = {"q": q_, "provider_id": provider_id, "sharing_type": sharing_type,
               "open_to_public": open_to_public, "source_kind": source_kind,
               "classification": classification}
    rows = [ResourceOut.model_validate(r) for r in await q.search(conn, filters, limit, offset)]
    return csv_response(rows, "catalogue.csv") if format == "csv" else rows


@router.get("/v1/catalogue/desk", response_model=DeskOut, dependencies=_roles(*PROVIDERS))
async def desk(conn: Conn, caller: Caller) -> DeskOut:
    """The caller's department and its data requests waiting (the 部门工作台's head)."""
    department = await resources.staff_department(conn, caller)
    cur = await conn.execute(
        "SELECT (SELECT name FROM departments WHERE id = %(d)s), count(*),"
        " count(*) FILTER (WHERE a.provider_due_at < now()) FROM access_requests a"
        " JOIN resources r ON r.code = a.resource_code"
        " WHERE a.state = 'with_provider' AND r.provider_id = %(d)s", {"d": department})
    name, waiting, overdue = await cur.fetchone()
    return DeskOut(username=caller.name, department_id=department, department_name=name,
                   waiting_requests=waiting, overdue_requests=overdue)


@router.get("/v1/catalogue/classifications", response_model=list[Classification],
            dependencies=_roles(*PEOPLE))
async def classifications(conn: Conn) -> list[dict]:
    return await q.classifications(conn)


@router.post("/v1/catalogue/resources", status_code=201, response_model=ResourceOut,
             dependencies=_roles(*PROVIDERS))
async def register(body: ResourceIn, conn: Conn, caller: Caller) -> dict:
    code = await resources.register(conn, caller, body.model_dump())
    return await resources.get(conn, code)


@router.get("/v1/catalogue/resources/{code}", response_model=ResourceOut,
            dependencies=_roles(*PEOPLE))
async def get_resource(code: Code, conn: Conn) -> dict:
    return await resources.get(conn, code)


@router.put("/v1/catalogue/resources/{code}", response_model=ResourceOut,
            dependencies=_roles(*PROVIDERS),
            responses={409: {"description": "changed by someone else since it was read, or a"
                                            " platform entry"}})
async def edit_resource(code: Code, body: ResourceEdit, conn: Conn, caller: Caller) -> dict:
    """The provider's staff describe their resource anew (the whole entry)."""
    entry = body.model_dump(exclude={"expected_updated_at"})
    await resources.update(conn, caller, code, entry, body.expected_updated_at)
    return await resources.get(conn, code)


@router.get("/v1/catalogue/resources/{code}/data", response_model=DataOut,
            responses=CSV_RESPONSE, dependencies=_roles(*PEOPLE))
async def resource_data(
    code: Code, conn: Conn, caller: Caller, now: Now,
    since: datetime | None = None, until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000, format: Format = "json",
) -> DataOut | Response:
    """The data, for a live grant (API key or person), the provider, or anyone when open."""
    resource = await resources.get(conn, code)
    try:
        await portal.may_read(conn, caller, resource, now)
    except Forbidden:
        await usage.record_refusal(conn, code, caller, now)
        raise
    until = until or now
    since = since or until - timedelta(days=1)
    since, until = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (since, until))
    if since >= until:
        raise InvalidInput("since must be before until")
    rows = await data.rows(conn, resource, since, until, limit)
    await usage.record_call(conn, code, caller, True, len(rows), now)
    if format == "csv":
        return csv_response(rows, f"{code}.csv")
    return DataOut(resource=code, columns=list(rows[0]) if rows else [], rows=rows)


@router.post("/v1/catalogue/resources/{code}/requests", status_code=201, response_model=Applied,
             dependencies=_roles(*APPLICANTS))
async def apply(
    code: Code, body: ApplicationIn, conn: Conn, caller: Caller, cal: Calendar, now: Now
) -> Applied:
    """Apply stating the purpose. Unconditional sharing: granted after the automatic
    compliance check, with the key in this answer; conditional: goes to the provider."""
    app = portal.Application(resource_code=code, **body.model_dump())
    request_id, key = await portal.apply(conn, cal, caller, app, now)
    return Applied(request=await _request_by_id(conn, request_id, now), key=key)


@router.get("/v1/catalogue/requests", response_model=list[RequestOut],
            dependencies=_roles(*PEOPLE))
async def list_requests(
    conn: Conn, now: Now, applicant: str | None = None, state: str | None = None,
    provider_id: str | None = None, resource_code: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[RequestOut]:
    filters = {"applicant": applicant, "state": state, "provider_id": provider_id,
               "resource_code": resource_code}
    return [_request_out(r, now) for r in await q.requests(conn, filters, limit)]


async def _request_by_id(conn: Conn, request_id: int, now: datetime) -> RequestOut:
    rows = await q.requests(conn, {"id": request_id}, 1)
    return _request_out(rows[0], now)


@router.post("/v1/catalogue/requests/{request_id}/approve", response_model=RequestOut,
             dependencies=_roles(*PROVIDERS), responses=DECIDED)
async def approve(request_id: int, conn: Conn, caller: Caller, now: Now,
                  body: ApproveIn | None = None) -> RequestOut:
    """Approve for the days asked or fewer; fields and rows narrow the grant at once (a
    resource with a governed dataset behind it). All or nothing."""
    body = body or ApproveIn()
    async with conn.transaction():
        await portal.decide(conn, caller, request_id, True, body.reason, now, days=body.days)
        if body.scoped():
            granted = await _request_by_id(conn, request_id, now)
            await grants.set_scope(conn, caller, granted.grant_id or 0, body.fields,
                                   body.unmasked_fields, body.row_scope)
    return await _request_by_id(conn, request_id, now)


@router.post("/v1/catalogue/requests/{request_id}/refuse", response_model=RequestOut,
             dependencies=_roles(*PROVIDERS), responses=DECIDED)
async def refuse(request_id: int, body: DecisionIn, conn: Conn, caller: Caller,
                 now: Now) -> RequestOut:
    await portal.decide(conn, caller, request_id, False, body.reason, now)
    return await _request_by_id(conn, request_id, now)


@router.post("/v1/catalogue/requests/{request_id}/key", response_model=KeyOut,
             dependencies=_roles(*APPLICANTS))
async def collect_key(request_id: int, conn: Conn, caller: Caller) -> KeyOut:
    """The applicant collects the API key of an approved request, once."""
    return KeyOut(key=await portal.collect_key(conn, caller, request_id))


@router.get("/v1/catalogue/grants", response_model=list[GrantOut], dependencies=_roles(*PEOPLE))
async def list_grants(
    conn: Conn, grantee: str | None = None, provider_id: str | None = None,
    resource_code: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict]:
    filters = {"grantee": grantee, "provider_id": provider_id, "resource_code": resource_code}
    return await q.grants(conn, filters, limit)


@router.post("/v1/catalogue/grants/{grant_id}/revoke", response_model=Revoked,
             dependencies=_roles(*PROVIDERS))
async def revoke(grant_id: int, body: RevokeIn, conn: Conn, caller: Caller, now: Now) -> Revoked:
    key_revoked = await portal.revoke(conn, caller, grant_id, body.reason, now)
    (grant,) = await q.grants(conn, {"id": grant_id}, 1)
    return Revoked(grant=GrantOut.model_validate(grant), key_revoked=key_revoked)


@router.post("/v1/catalogue/resources/{code}/attachments", status_code=201,
             response_model=AttachmentOut, dependencies=_roles(*PROVIDERS))
async def upload(
    code: Code, file: Annotated[UploadFile, File()], conn: Conn, caller: Caller,
    settings: Annotated[Settings, Depends(get_settings)], request: Request,
) -> AttachmentOut:
    """Attach a document, photo or scan to a resource (its provider's staff); an office file
    is converted to PDF in the background for its preview (.../preview)."""
    resource = await resources.get(conn, code)
    await resources.check_provider(conn, caller, resource["provider_id"])
    row = await objects.store(
        conn, owner_kind="resource", owner_id=code, department_id=resource["provider_id"],
        filename=file.filename or "upload", content_type=file.content_type or "",
        data=await file.read(settings.upload_max_bytes + 1), uploaded_by=caller.name,
        max_bytes=settings.upload_max_bytes,
    )
    # an office file: converted to PDF by the time it is viewed
    await previews.ask(conn, previews.runner_for(request.app.state), row)
    return AttachmentOut.model_validate(row)


@router.get("/v1/catalogue/resources/{code}/attachments", response_model=list[AttachmentOut],
            dependencies=_roles(*PEOPLE))
async def list_attachments(code: Code, conn: Conn, caller: Caller, now: Now,
                           request: Request) -> list[dict]:
    """The files of a resource, for whoever may read its data; an office file with the state
    of its PDF preview (converting, ready, failed)."""
    resource = await resources.get(conn, code)
    await portal.may_read(conn, caller, resource, now)
    files = await objects.list_for(conn, "resource", code)
    return await previews.with_states(conn, previews.runner_for(request.app.state), files)


@router.get("/v1/catalogue/resources/{code}/attachments/{object_id}", response_class=Response,
            dependencies=_roles(*PEOPLE), responses={200: {"content": {"*/*": {}}}})
async def download(code: Code, object_id: int, conn: Conn, caller: Caller, now: Now,
                   request: Request) -> Response:
    """The file with its own content type, inline (a PDF opens in the browser's viewer, an
    image shows); office files download (their PDF: .../preview). Every read is audited."""
    resource = await resources.get(conn, code)
    await portal.may_read(conn, caller, resource, now)
    meta, blob = await objects.fetch(conn, "resource", code, object_id)
    await write_audit_conn(
        conn, actor=caller.name, actor_kind=caller.kind, role=caller.role.value,
        action="GET /v1/catalogue/resources/{code}/attachments/{object_id}",
        target=request.url.path, source=client_address(request), outcome="ok", status=200,
        detail={"filename": meta["filename"], "content_type": meta["content_type"],
                "size_bytes": meta["size_bytes"]})
    return Response(blob, media_type=meta["content_type"], headers={
        "X-Content-SHA256": meta["sha256"], "X-Content-Type-Options": "nosniff",
        "Content-Disposition": objects.disposition(meta["filename"], meta["content_type"])})
