"""Writing event categories and time limits (the data administrator's console page)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.events import Unit, Urgency

CODE = r"^[A-Z][0-9A-Z.]{1,31}$"
Step = Literal["accept", "verify", "dispatch", "dispose", "check", "total"]


class CategoryFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["facility", "incident"]
    major: str = Field(min_length=1, max_length=100, description="大类")
    minor: str = Field(min_length=1, max_length=100, description="小类")
    department_id: str | None = Field(None, description="责任单位 suggested at dispatch")
    register_rule: str = Field("", max_length=2000, description="立案标准")
    close_rule: str = Field("", max_length=2000, description="结案标准")


class CategoryIn(CategoryFields):
    code: str = Field(pattern=CODE, description="kind letter, class, subclass: F01.03")


class TimeLimitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category_code: str = Field(pattern=r"^(\*|[A-Z][0-9A-Z.]{1,31})$",
                               description="'*' sets every category's default")
    urgency: Urgency
    step: Step
    amount: float = Field(gt=0, le=1000)
    unit: Unit
