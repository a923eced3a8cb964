"""Open311 GeoReport v2 over the event workflow: categories are services, events are service
requests. Our states map to the spec's two (every open state is `open`; closed and cancelled
are `closed`), and a citizen's request enters as an event of channel `citizen`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection

from api.schemas.open311 import Service, ServiceRequest
from api.services.events import service
from api.services.events.calendar import WorkCalendar
from api.services.events.workflow import open311_status
from cityops.errors import InvalidInput
from cityops.principal import Principal

STATE_NOTES = {
    "reported": "received", "verifying": "being verified on site", "registered": "accepted",
    "dispatched": "sent to the responsible department", "processing": "being handled",
    "feedback": "handled, awaiting check", "checking": "being checked on site",
    "suspended": "on hold", "closed": "resolved", "cancelled": "not accepted",
}


@dataclass
class CitizenRequest:
    service_code: str
    description: str
    lat: float | None = None
    long: float | None = None
    address_string: str = ""
    first_name: str = ""
    last_name: str = ""
    media_url: str = ""


def as_service(category: dict) -> Service:
    return Service(service_code=category["code"], service_name=category["minor"],
                   description=category["register_rule"], group=category["major"],
                   keywords=category["kind"])


async def submit(
    conn: AsyncConnection, cal: WorkCalendar, req: CitizenRequest, principal: Principal,
    now: datetime,
) -> int:
    """A citizen's request becomes a reported event. Contact details are not stored: the
    citizen app keeps them and follows up with the request id."""
    if (req.lat is None or req.long is None) and not req.address_string.strip():
        raise InvalidInput("a location is required: lat and long, or address_string")
    name = f"{req.first_name} {req.last_name}".strip()
    new = service.NewEvent(
        channel="citizen", category_code=req.service_code, description=req.description,
        address=req.address_string, latitude=req.lat, longitude=req.long,
        reporter=f"citizen:{name}" if name else f"citizen via {principal.name}",
        media_url=req.media_url or None,
    )
    event_id = await service.create(conn, cal, new, principal, now)
    await conn.execute("UPDATE events SET reported_via = %s WHERE id = %s",
                       (reported_via(principal), event_id))
    return event_id


def reported_via(principal: Principal) -> str:
    return f"{principal.kind}:{principal.name}"


def listing_scope(principal: Principal) -> str | None:
    """A citizen application (an API key) sees what it reported; the desk's people see every
    citizen request."""
    return reported_via(principal) if principal.kind == "api_key" else None


def as_request(row: dict) -> ServiceRequest:
    return ServiceRequest(
        service_request_id=str(row["id"]), status=open311_status(row["state"]),
        # the public wording of the state only: workflow notes name people and internals
        status_notes=STATE_NOTES.get(row["state"], row["state"]),
        service_name=row["service_name"], service_code=row["category_code"],
        description=row["description"], agency_responsible=row["agency"],
        requested_datetime=row["reported_at"],
        updated_datetime=row["closed_at"] or row["updated_at"],
        expected_datetime=row["total_deadline_at"], address=row["address"],
        lat=row["latitude"], long=row["longitude"], media_url=row["media_url"] or "",
    )
