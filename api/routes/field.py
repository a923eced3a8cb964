"""城管通, the field app's routes (issue 18 item 4): an inspector's own reports and the closures
waiting for an on-site check, the on-site check itself, a department worker's open work.
Thin: the rules are in cityevents/field.py; docs/field-app.md."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.deps import Conn, get_principal, require
from api.routes.event_views import Calendar, Now, event_out
from api.schemas.events import EventOut
from api.schemas.field import FieldTask, SiteCheckIn, SiteCheckOut
from cityevents import field
from cityevents.workflow import REPORTER_ROLES, SITE_CHECK_ROLES
from cityops.principal import Principal, Role

router = APIRouter(tags=["field"])
Caller = Annotated[Principal, Depends(get_principal)]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/v1/field/reports", response_model=list[EventOut],
            dependencies=[Depends(require(*REPORTER_ROLES))])
async def my_reports(conn: Conn, caller: Caller, cal: Calendar, now: Now,
                     limit: Limit = 50) -> list[EventOut]:
    """The caller's own reports, newest first, with their state and light."""
    return [event_out(r, cal, now) for r in await field.my_reports(conn, caller, limit)]


@router.get("/v1/field/checks", response_model=list[EventOut],
            dependencies=[Depends(require(*SITE_CHECK_ROLES, Role.DISPATCHER))])
async def checks_waiting(conn: Conn, cal: Calendar, now: Now, limit: Limit = 50
                         ) -> list[EventOut]:
    """Events the 监督中心 sent to 核查 (state checking) not yet checked on site."""
    return [event_out(r, cal, now) for r in await field.checks_waiting(conn, limit)]


@router.post("/v1/events/{event_id}/site-check", status_code=201, response_model=SiteCheckOut,
             dependencies=[Depends(require(*SITE_CHECK_ROLES))],
             responses={404: {"description": "no such event"},
                        409: {"description": "not checking, or already checked this round"}})
async def site_check(event_id: Annotated[int, Path(ge=1)], body: SiteCheckIn, conn: Conn,
                     caller: Caller, now: Now) -> SiteCheckOut:
    """The inspector's on-site check (核查) of a closure: pass or fail, a note and photos
    uploaded to the event first; the dispatcher then closes or sends it back (返工)."""
    transition = await field.site_check(conn, event_id, caller, now,
                                        field.SiteCheck(**body.model_dump()))
    return SiteCheckOut(event_id=event_id, transition_id=transition, result=body.result)


@router.get("/v1/field/tasks", response_model=list[FieldTask],
            dependencies=[Depends(require(Role.DEPARTMENT_STAFF, Role.DISPATCHER))])
async def worker_tasks(conn: Conn, caller: Caller, cal: Calendar, now: Now,
                       limit: Limit = 100) -> list[FieldTask]:
    """The open work of the caller's department: events it leads (dispatched, processing)
    and its co-handling tasks (协办), the earliest deadline first."""
    rows = await field.worker_tasks(conn, caller, limit)
    return [FieldTask(**{k: v for k, v in r.items() if k not in ("event", "event_id")},
                      event=event_out(r["event"], cal, now)) for r in rows]
