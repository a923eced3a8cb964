"""City events: report, the workflow steps, approvals, supervision, attachments, evaluation.

Every step has its own route so that OpenAPI shows who may take it; the service checks the
state (409 when illegal) and, for department steps, the caller's department.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, File, Header, Path, Query, UploadFile
from fastapi.responses import Response

from api.deps import Conn, get_principal, get_settings, require
from api.routes.event_views import Calendar, Now, evaluation_out, event_detail, event_out
from api.schemas.events import (
    AlarmRuleIn,
    AlarmRuleOut,
    AttachmentOut,
    Categories,
    Created,
    DecisionIn,
    Evaluation,
    EventDetail,
    EventIn,
    EventOut,
    RequestIn,
    StepIn,
    SuperviseIn,
    Swept,
)
from cityevents import alarms as alarm_events
from cityevents import field, service, supervision
from cityevents import queries as q
from cityevents import requests as asks
from cityevents.evaluation import cohandling
from cityevents.reminders import reminder_policy
from cityevents.workflow import ACTIONS, APPROVER_ROLES, REPORTER_ROLES, REQUESTS
from cityops.errors import InvalidInput
from cityops.principal import Principal, Role
from cityops.settings import Settings
from datafoundation.catalogue import objects
from datafoundation.dashboards.export import CSV_RESPONSE, Format, csv_response

router = APIRouter(tags=["events"])
Caller = Annotated[Principal, Depends(get_principal)]
EventId = Annotated[int, Path(ge=1)]
# the inspector (监督员, 城管通) reads cases too: their reports, the photos of a closure to check
READERS = (Role.DISPATCHER, Role.DEPARTMENT_STAFF, Role.OPERATOR, Role.VIEWER, Role.INSPECTOR)
REQUESTERS = {r for kind in REQUESTS.values() for r in kind.requester_roles}


def _roles(roles) -> list:
    return [Depends(require(*roles))]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# the data administrator keeps them (api/routes/event_categories.py), so reads them too
@router.get("/v1/event-categories", response_model=Categories,
            dependencies=_roles((*READERS, Role.DATA_ADMIN)))
async def list_categories(conn: Conn) -> Categories:
    categories, limits = await q.categories(conn)
    return Categories(categories=categories, time_limits=limits)


@router.get("/v1/event-alarm-rules", response_model=list[AlarmRuleOut],
            dependencies=_roles(READERS))
async def list_alarm_rules(conn: Conn) -> list[dict]:
    return await alarm_events.mapped_rules(conn)


@router.put("/v1/event-alarm-rules/{rule_id}", response_model=AlarmRuleOut,
            dependencies=_roles((Role.DISPATCHER,)))
async def map_alarm_rule(
    rule_id: Annotated[str, Path(max_length=63)], body: AlarmRuleIn, conn: Conn
) -> dict:
    """Make the alarms of an ingestion rule open events of a category (see `events watch`)."""
    return await alarm_events.map_rule(conn, rule_id, body.model_dump())


@router.post("/v1/events", status_code=201, response_model=Created,
             dependencies=_roles(REPORTER_ROLES))
async def report(
    body: EventIn, conn: Conn, caller: Caller, cal: Calendar, now: Now,
    idempotency_key: Annotated[str | None, Header(
        description="the same key again (a retry after a lost answer) returns the first"
                    " report's event instead of a second one")] = None,
) -> Created:
    new = service.NewEvent(**body.model_dump())
    event_id, _ = await field.report_once(conn, cal, new, caller, now, idempotency_key)
    return Created(id=event_id)


@router.get("/v1/events/evaluation", response_model=list[Evaluation], responses=CSV_RESPONSE,
            dependencies=_roles((Role.DISPATCHER, Role.VIEWER)))
async def evaluation(
    conn: Conn, now: Now,
    start: Annotated[datetime | None, Query(description="ISO 8601; default 30 days ago")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601; default now")] = None,
    format: Format = "json",
) -> list[Evaluation] | Response:
    end = _utc(end or now)
    start = _utc(start or end - timedelta(days=30))
    if start >= end:
        raise InvalidInput("start must be before end")
    merged = cohandling.merge(await q.evaluation(conn, start, end),
                              await cohandling.counts(conn, start, end))
    rows = [evaluation_out(r) for r in merged]
    return csv_response(rows, "evaluation.csv") if format == "csv" else rows


@router.post("/v1/events/sweep", response_model=Swept,
             dependencies=_roles((Role.DISPATCHER,)))
async def sweep(conn: Conn, cal: Calendar, now: Now,
                settings: Annotated[Settings, Depends(get_settings)]) -> Swept:
    """Raise supervision (督办) on every event whose light is red and remind (催办) the tasks
    running low or over; `cityops events watch` runs this every minute."""
    done = await supervision.sweep(conn, cal, now, reminder_policy(settings))
    return Swept(supervised=done.supervised, reminded=done.reminded)


@router.get("/v1/events", response_model=list[EventOut], responses=CSV_RESPONSE,
            dependencies=_roles(READERS))
async def list_events(
    conn: Conn, cal: Calendar, now: Now,
    state: str | None = None, department_id: str | None = None,
    category_code: str | None = None, channel: str | None = None,
    supervised: bool | None = None, urgency: str | None = None,
    task_department_id: Annotated[str | None, Query(
        description="events this department leads or co-handles (协办)")] = None,
    since: Annotated[datetime | None, Query(description="reported at or after")] = None,
    until: Annotated[datetime | None, Query(description="reported before")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    format: Format = "json",
) -> list[EventOut] | Response:
    filters = {"state": state, "department_id": department_id, "category_code": category_code,
               "channel": channel, "supervised": supervised, "urgency": urgency,
               "task_department_id": task_department_id}
    rows = [event_out(r, cal, now)
            for r in await q.listing(conn, filters, since, until, limit, offset)]
    return csv_response(rows, "events.csv") if format == "csv" else rows


@router.get("/v1/events/{event_id}", response_model=EventDetail, dependencies=_roles(READERS))
async def get_event(event_id: EventId, conn: Conn, cal: Calendar, now: Now) -> EventDetail:
    row = await q.get(conn, event_id)
    transitions, requests = await q.history(conn, event_id)
    files = await objects.list_for(conn, "event", str(event_id))
    return event_detail(row, cal, now, transitions, requests, files)


def _step_route(name: str):
    async def take_step(
        event_id: EventId, conn: Conn, caller: Caller, cal: Calendar, now: Now,
        body: StepIn | None = None,
    ) -> EventOut:
        step = service.Step(**(body or StepIn()).model_dump())
        await service.act(conn, cal, event_id, name, caller, now, step)
        return event_out(await q.get(conn, event_id), cal, now)

    take_step.__name__ = f"event_{name}"
    take_step.__doc__ = f"Workflow step `{name}`; see docs/city-operations.md."
    return take_step


for _name, _action in ACTIONS.items():
    router.add_api_route(
        f"/v1/events/{{event_id}}/{_name}", _step_route(_name), methods=["POST"],
        response_model=EventOut, dependencies=_roles(_action.roles),
        responses={409: {"description": "not allowed in the event's state"}},
    )


@router.post("/v1/events/{event_id}/supervise", response_model=EventOut,
             dependencies=_roles((Role.DISPATCHER,)))
async def supervise(
    event_id: EventId, body: SuperviseIn, conn: Conn, caller: Caller, cal: Calendar, now: Now,
) -> EventOut:
    await service.supervise(conn, event_id, caller, now, body.note)
    return event_out(await q.get(conn, event_id), cal, now)


@router.post("/v1/events/{event_id}/requests", status_code=201, response_model=Created,
             dependencies=_roles(REQUESTERS))
async def ask(event_id: EventId, body: RequestIn, conn: Conn, caller: Caller, now: Now) -> Created:
    """Ask to cancel (作废), suspend (挂账), extend (延期) or return (回退) an event."""
    request = asks.Ask(**body.model_dump())
    return Created(id=await asks.ask(conn, event_id, caller, now, request))


def _decision_route(approve: bool):
    async def decide(
        event_id: EventId, request_id: Annotated[int, Path(ge=1)], conn: Conn, caller: Caller,
        cal: Calendar, now: Now, body: DecisionIn | None = None,
    ) -> EventOut:
        note = (body or DecisionIn()).note
        await asks.decide(conn, cal, event_id, request_id, caller, now, approve, note)
        return event_out(await q.get(conn, event_id), cal, now)

    decide.__name__ = "approve_request" if approve else "refuse_request"
    return decide


for _verb, _approve in (("approve", True), ("refuse", False)):
    router.add_api_route(
        f"/v1/events/{{event_id}}/requests/{{request_id}}/{_verb}", _decision_route(_approve),
        methods=["POST"], response_model=EventOut, dependencies=_roles(APPROVER_ROLES),
    )


@router.post("/v1/events/{event_id}/attachments", status_code=201, response_model=AttachmentOut,
             dependencies=_roles(REPORTER_ROLES))
async def upload(
    event_id: EventId, file: Annotated[UploadFile, File()], conn: Conn, caller: Caller,
    settings: Annotated[Settings, Depends(get_settings)],
) -> AttachmentOut:
    event = await q.get(conn, event_id)
    data = await file.read(settings.upload_max_bytes + 1)
    row = await objects.store(
        conn, owner_kind="event", owner_id=str(event_id), department_id=event["department_id"],
        filename=file.filename or "upload", content_type=file.content_type or "", data=data,
        uploaded_by=caller.name, max_bytes=settings.upload_max_bytes,
    )
    return AttachmentOut.model_validate(row)


@router.get("/v1/events/{event_id}/attachments/{object_id}", response_class=Response,
            dependencies=_roles(READERS), responses={200: {"content": {"*/*": {}}}})
async def download(
    event_id: EventId, object_id: Annotated[int, Path(ge=1)], conn: Conn
) -> Response:
    meta, data = await objects.fetch(conn, "event", str(event_id), object_id)
    return Response(data, media_type=meta["content_type"],
                    headers={"X-Content-SHA256": meta["sha256"]})
