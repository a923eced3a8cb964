"""Co-handling (跨部门协同处置) and 催办: an event's tasks, adding and releasing co-handling
departments, their own steps, the lead's evaluation, reminders. Thin: the rules are in
cityevents/tasks.py and cityevents/reminders.py; docs/city-operations.md "Co-handling"."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from api.deps import Conn, get_principal, get_settings, require
from api.routes.event_views import Calendar, Now, event_out
from api.schemas.event_tasks import (
    EvaluateIn,
    ReleaseIn,
    ReminderIn,
    ReminderOut,
    TaskIn,
    TasksOut,
    TaskStepIn,
)
from api.schemas.events import Created
from cityevents import queries as q
from cityevents import reminders, tasks
from cityevents.task_views import tasks_of
from cityops.principal import Principal, Role
from cityops.settings import Settings

router = APIRouter(tags=["events"])
Caller = Annotated[Principal, Depends(get_principal)]
EventId = Annotated[int, Path(ge=1)]
TaskId = Annotated[int, Path(ge=1)]
READERS = (Role.DISPATCHER, Role.DEPARTMENT_STAFF, Role.OPERATOR, Role.VIEWER)
DISPATCH = [Depends(require(Role.DISPATCHER))]
WORKERS = [Depends(require(Role.DISPATCHER, Role.DEPARTMENT_STAFF))]


async def _tasks(conn, cal, event_id: int, now) -> TasksOut:
    event = await q.get(conn, event_id)
    return TasksOut(event_id=event_id, light=event_out(event, cal, now).clock.light,
                    tasks=await tasks_of(conn, cal, event, now),
                    reminders=await reminders.listing(conn, event_id))


@router.get("/v1/events/{event_id}/tasks", response_model=TasksOut,
            dependencies=[Depends(require(*READERS))])
async def list_tasks(event_id: EventId, conn: Conn, cal: Calendar, now: Now) -> TasksOut:
    """The lead's task (主办) and each co-handler's (协办), with light and time left."""
    return await _tasks(conn, cal, event_id, now)


@router.post("/v1/events/{event_id}/tasks", status_code=201, response_model=Created,
             dependencies=DISPATCH)
async def add_task(event_id: EventId, body: TaskIn, conn: Conn, caller: Caller, cal: Calendar,
                   now: Now) -> Created:
    """Add a co-handling department (协办) with its time limit (default: the category's)."""
    new = tasks.NewTask(**body.model_dump())
    return Created(id=await tasks.add(conn, cal, event_id, caller, now, new))


@router.post("/v1/events/{event_id}/tasks/{task_id}/release", response_model=TasksOut,
             dependencies=DISPATCH)
async def release_task(event_id: EventId, task_id: TaskId, body: ReleaseIn, conn: Conn,
                       caller: Caller, cal: Calendar, now: Now) -> TasksOut:
    """Release (解除) a co-handler: its task no longer keeps the event open."""
    await tasks.release(conn, event_id, task_id, caller, now, body.note)
    return await _tasks(conn, cal, event_id, now)


def _task_step(name: str):
    async def task_step(event_id: EventId, task_id: TaskId, conn: Conn, caller: Caller,
                        cal: Calendar, now: Now, body: TaskStepIn | None = None) -> TasksOut:
        step = tasks.TaskStep(**(body or TaskStepIn()).model_dump())
        await tasks.step(conn, event_id, task_id, name, caller, now, step)
        return await _tasks(conn, cal, event_id, now)

    task_step.__name__ = f"task_{name}"
    task_step.__doc__ = (f"The co-handling department's `{name}` of its task (签收 / 反馈 with"
                         " photos uploaded to the event first).")
    return task_step


for _name in ("accept", "feedback"):
    router.add_api_route(f"/v1/events/{{event_id}}/tasks/{{task_id}}/{_name}",
                         _task_step(_name), methods=["POST"], response_model=TasksOut,
                         dependencies=WORKERS)


@router.post("/v1/events/{event_id}/tasks/{task_id}/evaluate", response_model=TasksOut,
             dependencies=WORKERS)
async def evaluate_task(event_id: EventId, task_id: TaskId, body: EvaluateIn, conn: Conn,
                        caller: Caller, cal: Calendar, now: Now) -> TasksOut:
    """The lead department rates a co-handler's feedback; unsatisfied sends it back."""
    step = tasks.TaskStep(note=body.note, rating=body.rating)
    await tasks.evaluate(conn, event_id, task_id, caller, now, step)
    return await _tasks(conn, cal, event_id, now)


@router.post("/v1/events/{event_id}/reminders", status_code=201, response_model=ReminderOut,
             dependencies=DISPATCH)
async def remind(event_id: EventId, body: ReminderIn, conn: Conn, caller: Caller, now: Now,
                 settings: Annotated[Settings, Depends(get_settings)]) -> dict:
    """催办: remind the lead (no task_id) or a co-handler; escalates to the department's
    leader on the task's Nth reminder (CITYOPS_EVENT_REMINDER_ESCALATE_AFTER)."""
    return await reminders.remind(conn, event_id, body.task_id, caller, now, body.note,
                                  reminders.reminder_policy(settings))
