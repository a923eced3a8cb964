"""Bodies of the 数据质量 routes (issue #15): rule sets as YAML, runs and their results,
daily scores, 校核纠错 tasks and rows held in quarantine."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_DATASET = r"^[a-z][a-z0-9_]{0,62}\.[a-z][a-z0-9_]{0,62}$"


class RulesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    yaml: str = Field(min_length=1, max_length=200_000,
                      description="the rule set as YAML (correction_days, rules)")


class RuleOut(BaseModel):
    name: str
    kind: str
    dimension: str
    hard: bool
    spec: dict[str, Any]
    description: str


class RuleSetOut(BaseModel):
    dataset: str
    name: str
    department: str
    correction_days: int
    loaded_at: datetime
    loaded_by: str
    source: str
    rules: list[RuleOut]


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str = Field(pattern=_DATASET)


class ResultOut(BaseModel):
    rule: str
    kind: str
    dimension: str
    hard: bool
    checked: int
    failed: int
    passed: bool
    detail: str
    sample: list[dict[str, Any]]


class RunOut(BaseModel):
    id: int
    dataset: str
    department: str
    trigger: str
    state: str
    started_at: datetime
    finished_at: datetime | None
    row_count: int | None
    score: float | None
    error: str | None


class RunResultsOut(RunOut):
    results: list[ResultOut]


class ScoreOut(BaseModel):
    day: date
    key: str = Field(description="the dataset or the department, as asked by `by`")
    dimension: str
    score: float
    rules: int
    failed_rules: int


class TaskNoteOut(BaseModel):
    id: int
    kind: Literal["comment", "resolve"]
    note: str
    author: str
    at: datetime


class TaskNoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=2000, description="what was found or corrected")


class TaskOut(BaseModel):
    id: int
    dataset: str
    dataset_name: str
    rule: str
    department: str
    state: str
    failed: int
    detail: str
    sample: list[dict[str, Any]]
    opened_at: datetime
    due_at: datetime
    closed_at: datetime | None
    opened_run_id: int
    last_run_id: int
    closed_run_id: int | None
    overdue: bool
    closed_by: str | None = Field(None, description="who resolved it (None: a passing run)")
    resolution: str | None = None
    notes: list[TaskNoteOut] = Field(default_factory=list, description="comments, oldest first")


class HeldRowOut(BaseModel):
    id: int
    rule: str
    row_key: dict[str, Any]
    row_data: dict[str, Any]
    reason: str
    run_id: int
    found_at: datetime
