"""Bodies of the 城管通 field routes (api/routes/field.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.events import EventOut


class SiteCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result: Literal["pass", "fail"] = Field(description="核查通过 / 核查不通过")
    note: str = Field(min_length=1, max_length=4000, description="what was found on site")
    attachment_ids: list[int] = Field(min_length=1, max_length=20,
                                      description="photos uploaded to the event beforehand")


class SiteCheckOut(BaseModel):
    event_id: int
    transition_id: int
    result: Literal["pass", "fail"]


class FieldTask(BaseModel):
    """One piece of a department's open work: the lead's own event, or a co-handling task."""

    part: Literal["lead", "co"]
    task_id: int | None = Field(description="the co-handling task; None for the lead")
    task_state: str = Field(description="the event's state (lead) or the task's (co)")
    instructions: str
    deadline_at: datetime | None
    event: EventOut
