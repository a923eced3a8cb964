"""Pure logic of co-handling (协办): a task's light and time left on the working calendar, the
event's worst light, and the per-department evaluation rows merged from lead and co counts."""

from datetime import datetime

from cityevents.calendar import COUNTY_TZ, WorkCalendar
from cityevents.evaluation.cohandling import merge
from cityevents.task_views import co_light, task_clock, worst


def cst(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=COUNTY_TZ)


def test_task_light_counts_working_time_only() -> None:
    cal = WorkCalendar()
    task = {"state": "processing", "unit": "work_hours", "limit_s": 4 * 3600.0,
            "deadline_at": cst(2026, 11, 16, 14, 30)}  # Monday 09:00 + 4 working hours
    assert task_clock(cal, task, cst(2026, 11, 16, 12, 45))["light"] == "green"  # lunch: 3 h
    yellow = task_clock(cal, task, cst(2026, 11, 16, 14, 0))
    assert yellow["light"] == "yellow" and yellow["left_s"] == 1800
    late = task_clock(cal, task, cst(2026, 11, 16, 16, 30))
    assert late["light"] == "red" and late["left_s"] == -7200
    assert task_clock(cal, task | {"state": "done"}, cst(2026, 11, 17, 9, 0))["light"] is None
    # as the query hands them over: JSON with ISO strings
    as_json = [task | {"deadline_at": "2026-11-16T14:30:00+08:00"}]
    assert co_light(cal, as_json, cst(2026, 11, 16, 14, 0)) == "yellow"
    assert worst("green", None, "red", "yellow") == "red" and worst(None) is None


def test_merge_keeps_lead_counts_and_adds_co_handlers() -> None:
    lead = [{"department_id": "b", "dispatched": 2, "due": 2, "disposed_on_time": 1}]
    rows = merge(lead, {"a": {"co_assigned": 1, "co_due": 1, "co_disposed": 1,
                              "co_disposed_on_time": 1, "co_reworked": 0}})
    assert [r["department_id"] for r in rows] == ["a", "b"]
    assert rows[0]["dispatched"] == 0 and rows[0]["co_due"] == 1
    assert rows[1]["due"] == 2 and rows[1]["co_due"] == 0
