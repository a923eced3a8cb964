"""数据质量 (issue #15): rule sets per dataset, runs on demand, results with masked samples,
scores per dataset and department on the GB/T 36344 dimensions, the 校核纠错 tasks and the
rows held in quarantine. The data bureau (`data_admin`) writes rules and runs them; department
staff see their own department's datasets and tasks. Domain logic: datafoundation/quality/."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import psycopg
from fastapi import APIRouter, Depends, Path, Query, Request

from api.deps import Conn, audit_detail, check_department, get_settings, require
from api.schemas.quality import (
    HeldRowOut,
    RuleSetOut,
    RulesIn,
    RunIn,
    RunOut,
    RunResultsOut,
    ScoreOut,
    TaskNoteIn,
    TaskNoteOut,
    TaskOut,
)
from cityevents.calendar import WorkCalendar
from cityops.errors import InvalidInput
from cityops.principal import Principal, Role
from cityops.settings import Settings
from datafoundation.quality import load_rules, queries, run_dataset
from datafoundation.quality import tasks as task_notes

router = APIRouter(tags=["data quality"])
ADMINS = (Role.DATA_ADMIN,)
READERS = (Role.DATA_ADMIN, Role.DEPARTMENT_STAFF, Role.VIEWER)
SettingsDep = Annotated[Settings, Depends(get_settings)]
Dataset = Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_.]{2,126}$")]
NO_DATASET = {404: {"description": "the dataset (or run) named is not registered"}}


def _caller(*roles: Role):
    return Annotated[Principal, Depends(require(*roles))]


async def _check(conn: Conn, caller: Principal, dataset: str, what: str) -> None:
    check_department(caller, await queries.dataset_department(conn, dataset), what)


@router.get("/v1/quality/rules", response_model=list[RuleSetOut])
async def list_rules(conn: Conn, caller: _caller(*READERS), dataset: Dataset = None) -> list:
    return await queries.rule_sets(conn, caller.departments, dataset)


@router.put("/v1/quality/rules/{dataset_id}", response_model=RuleSetOut)
async def put_rules(dataset_id: str, body: RulesIn, conn: Conn, caller: _caller(*ADMINS),
                    request: Request, settings: SettingsDep) -> dict:
    """Replace the dataset's rules. Every rule is checked against the database first (its
    columns, regex, code table, referenced dataset, and its SQL planned): one that does not
    compile is refused (422) naming dataset and rule, and nothing is stored."""
    await _check(conn, caller, dataset_id, "to set this dataset's quality rules")
    audit_detail(request, dataset=dataset_id)

    def load() -> None:
        with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as c:
            load_rules(c, body.yaml, caller.name, dataset_id)

    await asyncio.to_thread(load)
    return (await queries.rule_sets(conn, None, dataset_id))[0]


@router.post("/v1/quality/runs", status_code=201, response_model=RunResultsOut,
             responses=NO_DATASET)
async def run_now(body: RunIn, conn: Conn, caller: _caller(*ADMINS), request: Request,
                  settings: SettingsDep) -> dict:
    """Run every rule of the dataset now (one scan) and answer the run with its results."""
    await _check(conn, caller, body.dataset, "to run this dataset's quality rules")
    audit_detail(request, dataset=body.dataset)
    cal = WorkCalendar(settings.calendar_extra_holidays, settings.calendar_extra_workdays)
    run_id = await asyncio.to_thread(run_dataset, settings.database_url.get_secret_value(),
                                     body.dataset, "manual", cal)
    return await queries.run(conn, run_id, None)


@router.get("/v1/quality/runs", response_model=list[RunOut])
async def list_runs(conn: Conn, caller: _caller(*READERS), dataset: Dataset = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list:
    return await queries.runs(conn, caller.departments, dataset, limit)


@router.get("/v1/quality/results", response_model=RunResultsOut, responses=NO_DATASET)
async def results(conn: Conn, caller: _caller(*READERS), dataset: Dataset = None,
                  run: Annotated[int | None, Query(ge=1)] = None) -> dict:
    """A run's results with their masked samples: `run`, or the dataset's latest run."""
    if run is None and dataset is None:
        raise InvalidInput("give dataset or run")
    found = await queries.run(conn, run, dataset)
    check_department(caller, found["department"], "to see this dataset's quality")
    return found


@router.get("/v1/quality/scores", response_model=list[ScoreOut])
async def scores(conn: Conn, caller: _caller(*READERS),
                 by: Annotated[Literal["dataset", "department"], Query()] = "department",
                 days: Annotated[int, Query(ge=1, le=366)] = 30) -> list:
    """Daily scores per dimension (0-100) by dataset or providing department, oldest first."""
    return await queries.scores(conn, caller.departments, by, days)


@router.get("/v1/quality/tasks", response_model=list[TaskOut])
async def tasks(conn: Conn, caller: _caller(*READERS), dataset: Dataset = None,
                state: Annotated[Literal["open", "closed"] | None, Query()] = None) -> list:
    """校核纠错 tasks: a department's staff see their department's."""
    return await queries.tasks(conn, caller.departments, state, dataset)


TaskId = Annotated[int, Path(ge=1, lt=2**62)]
ANSWERERS = (Role.DEPARTMENT_STAFF, Role.DATA_ADMIN)
TASK_409 = {409: {"description": "the task is closed already"}}


@router.post("/v1/quality/tasks/{task_id}/comments", status_code=201,
             response_model=TaskNoteOut, responses=TASK_409)
async def comment_task(task_id: TaskId, body: TaskNoteIn, conn: Conn,
                       caller: _caller(*ANSWERERS)) -> dict:
    """A comment on an open 校核纠错 task (its department's staff, the data bureau)."""
    return await task_notes.note(conn, caller, task_id, "comment", body.note)


@router.post("/v1/quality/tasks/{task_id}/resolve", response_model=TaskNoteOut,
             responses=TASK_409)
async def resolve_task(task_id: TaskId, body: TaskNoteIn, conn: Conn,
                       caller: _caller(*ANSWERERS)) -> dict:
    """Close an open task saying what was corrected; the next run checks the data again and
    opens a new task if the rule still fails. A second resolution answers 409."""
    return await task_notes.note(conn, caller, task_id, "resolve", body.note)


@router.get("/v1/quality/quarantine", response_model=list[HeldRowOut], responses=NO_DATASET)
async def quarantine(conn: Conn, caller: _caller(*READERS),
                     dataset: Annotated[str, Query(pattern=r"^[a-z][a-z0-9_.]{2,126}$")],
                     limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list:
    """Rows a hard rule holds back from the layer above now, masked, with their reasons."""
    await _check(conn, caller, dataset, "to see this dataset's held rows")
    return await queries.held(conn, dataset, limit)
