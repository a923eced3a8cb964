"""Alarms raised by ingestion's rules: list with filters, history, acknowledge and clear.
The lifecycle itself lives in ingestion/alarms.py, the only writer of alarms."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Caller, Conn, allow, audit_detail, check_department
from api.queries import readings as rq_readings
from api.queries import registry as rq
from api.read_pool import ReadConn
from api.routes.device_registry import scoped
from api.schemas.registry import Page
from cityops.principal import Role
from cityops.wire import ID_PATTERN
from ingestion import alarms

router = APIRouter(tags=["alarms"])
READERS = allow(Role.OPERATOR, Role.FIELD_TECHNICIAN, Role.DISPATCHER, Role.VIEWER)
OPERATOR = allow(Role.OPERATOR)
AlarmId = Annotated[int, Path(ge=1, le=2**62)]
Filter = Annotated[str | None, Query(pattern=ID_PATTERN)]
# the same column list ingestion reads alarms with
COLUMNS = alarms._COLUMNS


class Alarm(BaseModel):
    id: int
    rule: str
    device: str
    point: str | None
    severity: str
    state: str
    message: str
    value: float | None
    reading_at: datetime | None
    count: int
    first_seen_at: datetime
    last_seen_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    cleared_at: datetime | None
    cleared_by: str | None


class AlarmStep(BaseModel):
    id: int
    kind: str
    at: datetime
    by: str
    note: str


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field("", max_length=1000, examples=["crew on the way"])


@router.get("/v1/alarms", response_model=Page[Alarm], dependencies=[READERS])
async def list_alarms(
    conn: ReadConn, caller: Caller,  # a list may lag a standby's replay (api/read_pool.py)
    state: Annotated[str | None, Query(pattern="^(active|acknowledged|cleared)$")] = None,
    severity: Annotated[str | None, Query(pattern="^(critical|major|minor|warning)$")] = None,
    device: Filter = None, site: Filter = None, department: Filter = None,
    rule: Filter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict:
    """Newest first (by when the alarm was last seen)."""
    filters = {"a.state": state, "a.severity": severity, "a.device_id": device,
               "d.site_id": site, "d.department_id": department, "a.rule_id": rule}
    filters = scoped(filters, caller.departments)
    items, total = await rq.page(
        conn, COLUMNS, "alarms a JOIN devices d ON d.id = a.device_id"
        " LEFT JOIN points p ON p.id = a.point_id", filters, "a.last_seen_at DESC, a.id DESC",
        limit, offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/v1/alarms/{alarm}", response_model=Alarm, dependencies=[READERS])
async def get_alarm(alarm: AlarmId, conn: Conn, caller: Caller) -> dict:
    row = await alarms.get_alarm(conn, alarm)
    check_department(caller, await rq_readings.device_exists(conn, row["device"]), "alarm")
    return row


@router.get("/v1/alarms/{alarm}/history", response_model=list[AlarmStep],
            dependencies=[READERS])
async def alarm_history(alarm: AlarmId, conn: Conn) -> list[dict]:
    """Every step: raised, repeated, reopened, acknowledged, cleared; who and when."""
    await alarms.get_alarm(conn, alarm)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT id, kind, at, by, note FROM alarm_events WHERE alarm_id = %s"
                          " ORDER BY id", (alarm,))
        return await cur.fetchall()


@router.post("/v1/alarms/{alarm}/acknowledge", response_model=Alarm, dependencies=[OPERATOR],
             responses={409: {"description": "the alarm is not active"}})
async def acknowledge_alarm(alarm: AlarmId, conn: Conn, caller: Caller, request: Request,
                            body: Annotated[Note | None, Body()] = None) -> dict:
    audit_detail(request, alarm=alarm)
    return await alarms.acknowledge(conn, alarm, caller.name, body.note if body else "")


@router.post("/v1/alarms/{alarm}/clear", response_model=Alarm, dependencies=[OPERATOR],
             responses={409: {"description": "the alarm is cleared already"}})
async def clear_alarm(alarm: AlarmId, conn: Conn, caller: Caller, request: Request,
                      body: Annotated[Note | None, Body()] = None) -> dict:
    audit_detail(request, alarm=alarm)
    return await alarms.clear(conn, alarm, caller.name, body.note if body else "")
