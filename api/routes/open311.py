"""Open311 GeoReport v2 (JSON format) for the citizen-facing app: services, service requests.

Authenticated like every route: the citizen app is a platform service holding an API key with
role `operator` scoped to `* /v1/open311/*` (send it as X-API-Key rather than the spec's
api_key parameter); the 12345 hotline desk (dispatcher) may use the same routes with its login.
Citizens never hold credentials of their own. See docs/city-operations.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Path, Query

from api.deps import Conn, get_principal, require
from api.routes import open311_views
from api.routes.event_views import Calendar, Now
from api.schemas.open311 import RequestCreated, Service, ServiceDefinition, ServiceRequest
from cityevents import open311
from cityevents import queries as q
from cityops.errors import InvalidInput, NotFound
from cityops.principal import Principal, Role

router = APIRouter(tags=["open311"],
                   dependencies=[Depends(require(Role.OPERATOR, Role.DISPATCHER))])
Caller = Annotated[Principal, Depends(get_principal)]


@router.get("/v1/open311/services.json", response_model=list[Service])
async def services(conn: Conn) -> list[Service]:
    categories, _limits = await q.categories(conn)
    return [open311_views.as_service(c) for c in categories]


@router.get("/v1/open311/services/{service_code}.json", response_model=ServiceDefinition)
async def service_definition(
    service_code: Annotated[str, Path(max_length=32)], conn: Conn
) -> ServiceDefinition:
    categories, _limits = await q.categories(conn)
    if service_code not in {c["code"] for c in categories}:
        raise NotFound(f"service {service_code!r} does not exist")
    return ServiceDefinition(service_code=service_code)


@router.post("/v1/open311/requests.json", status_code=201, response_model=list[RequestCreated])
async def post_request(
    conn: Conn, caller: Caller, cal: Calendar, now: Now,
    service_code: Annotated[str, Form(max_length=32)],
    description: Annotated[str, Form(min_length=1, max_length=4000)],
    lat: Annotated[float | None, Form(ge=-90, le=90)] = None,
    long: Annotated[float | None, Form(ge=-180, le=180)] = None,
    address_string: Annotated[str, Form(max_length=500)] = "",
    first_name: Annotated[str, Form(max_length=64)] = "",
    last_name: Annotated[str, Form(max_length=64)] = "",
    media_url: Annotated[str, Form(max_length=1000)] = "",
) -> list[RequestCreated]:
    """Form-encoded, as the specification says; contact fields (email, phone) are ignored."""
    req = open311.CitizenRequest(service_code, description, lat, long, address_string,
                                 first_name, last_name, media_url)
    event_id = await open311.submit(conn, cal, req, caller, now)
    return [RequestCreated(service_request_id=str(event_id))]


@router.get("/v1/open311/requests.json", response_model=list[ServiceRequest])
async def get_requests(
    conn: Conn, caller: Caller,
    service_request_id: Annotated[str | None, Query(description="comma-separated ids")] = None,
    service_code: Annotated[str | None, Query(max_length=32)] = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    status: Literal["open", "closed"] | None = None,
) -> list[ServiceRequest]:
    ids = None
    if service_request_id:
        try:
            ids = [int(x) for x in service_request_id.split(",")]
        except ValueError as err:
            raise InvalidInput("service_request_id: comma-separated numbers") from err
    """A citizen application's key lists only the requests it submitted; the public status
    text only (no workflow notes, no names of the people handling them)."""
    rows = await q.open311_requests(conn, ids, service_code, start_date, end_date,
                                    None if status is None else status == "closed", 1000,
                                    open311.listing_scope(caller))
    return [open311_views.as_request(r) for r in rows]


@router.get("/v1/open311/requests/{service_request_id}.json",
            response_model=list[ServiceRequest])
async def get_request(
    service_request_id: Annotated[int, Path(ge=1)], conn: Conn, caller: Caller
) -> list[ServiceRequest]:
    """404 also for a request another application submitted."""
    rows = await q.open311_requests(conn, [service_request_id], None, None, None, None, 1,
                                    open311.listing_scope(caller))
    if not rows:
        raise NotFound(f"service request {service_request_id} does not exist")
    return [open311_views.as_request(rows[0])]
