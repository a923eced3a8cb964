"""Open311 GeoReport v2's shapes of our categories and events (the public view)."""

from __future__ import annotations

from api.schemas.open311 import Service, ServiceRequest
from cityevents.workflow import open311_status

STATE_NOTES = {
    "reported": "received", "verifying": "being verified on site", "registered": "accepted",
    "dispatched": "sent to the responsible department", "processing": "being handled",
    "feedback": "handled, awaiting check", "checking": "being checked on site",
    "suspended": "on hold", "closed": "resolved", "cancelled": "not accepted",
}


def as_service(category: dict) -> Service:
    return Service(service_code=category["code"], service_name=category["minor"],
                   description=category["register_rule"], group=category["major"],
                   keywords=category["kind"])


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
