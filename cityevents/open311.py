"""Open311 GeoReport v2 over the event workflow: categories are services, events are service
requests. Our states map to the spec's two (every open state is `open`; closed and cancelled
are `closed`), and a citizen's request enters as an event of channel `citizen`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection

from cityevents import service
from cityevents.calendar import WorkCalendar
from cityops.errors import InvalidInput
from cityops.principal import Principal


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
