"""Bodies of the co-handling (协办) and 催办 routes (api/routes/event_tasks.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.events import Light, Unit


class TaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    department_id: str = Field(min_length=1, max_length=64, description="the co-handler")
    instructions: str = Field("", max_length=4000, description="what is asked of it")
    amount: float | None = Field(None, gt=0, le=720,
                                 description="its time limit; default the category's dispose")
    unit: Unit | None = None


class TaskStepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=4000)
    attachment_ids: list[int] = Field(default_factory=list, max_length=50,
                                      description="feedback only: files uploaded to the event")


class ReleaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=4000, description="the reason")


class EvaluateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: Literal["satisfied", "fair", "unsatisfied"]
    note: str = Field("", max_length=4000, description="required when unsatisfied")


class ReminderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: int | None = Field(None, ge=1, description="a co-handling task; none: the lead's")
    note: str = Field("", max_length=4000)


class TaskOut(BaseModel):
    id: int | None = Field(description="None for the lead's task (the event's own workflow)")
    role: Literal["lead", "co"]
    department_id: str
    state: str
    instructions: str
    unit: Unit | None
    deadline_at: datetime | None
    light: Light | None
    used_share: float | None
    left_s: int | None = Field(description="seconds of the unit left (negative: overdue)")
    done_at: datetime | None
    done_on_time: bool | None
    feedback: str
    attachment_ids: list[int]
    rating: str | None
    rating_note: str
    rework_count: int
    reminders: int


class ReminderOut(BaseModel):
    id: int
    task_id: int | None
    department_id: str
    number: int
    reason: Literal["manual", "low", "overdue"]
    escalated: bool
    note: str
    actor: str
    at: datetime


class TasksOut(BaseModel):
    event_id: int
    light: Light | None = Field(description="the event's light: the worst of its clocks and tasks")
    tasks: list[TaskOut]
    reminders: list[ReminderOut]
