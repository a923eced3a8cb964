"""Quality rules as YAML, one file per dataset: parsed into typed rules (pydantic, extra
fields refused), each with its GB/T 36344 dimension. Whether a rule fits its dataset (the
columns exist, the regex compiles, the referenced dataset is there) is checked against the
database by `compile.check`, before anything is stored or run."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cityops.errors import InvalidInput

DIMENSIONS = ("完整性", "规范性", "准确性", "一致性", "时效性", "可访问性")
# the dimension a kind measures unless the rule says otherwise (GB/T 36344-2018: 准确性 counts
# wrong values and duplicates; 规范性 conformance to a format or standard; 一致性 agreement
# with related data and with the structure consumers rely on)
DEFAULT_DIMENSION = {
    "not_null": "完整性", "row_count": "完整性", "format": "规范性", "domain": "规范性",
    "check_digit": "准确性", "range": "准确性", "unique": "准确性", "reference": "一致性",
    "schema": "一致性", "freshness": "时效性", "available": "可访问性",
}
ROW_KINDS = ("not_null", "format", "check_digit", "domain", "range", "unique", "reference")
_NAME = r"^[a-z][a-z0-9_]{0,62}$"
_AGE = re.compile(r"^(\d+)\s*([mhd])$")


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_NAME)
    dimension: Literal[DIMENSIONS] | None = None  # type: ignore[valid-type]
    hard: bool = False
    description: str = ""

    @property
    def row_level(self) -> bool:
        return self.kind in ROW_KINDS  # type: ignore[attr-defined]


class NotNull(_Rule):
    kind: Literal["not_null"]
    columns: list[str] = Field(min_length=1)


class Format(_Rule):
    kind: Literal["format"]
    column: str
    regex: str = Field(min_length=1)


class CheckDigit(_Rule):
    kind: Literal["check_digit"]
    column: str
    standard: Literal["uscc", "id_card"]


class Domain(_Rule):
    kind: Literal["domain"]
    column: str
    values: list[str | int] | None = None
    code_table: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Domain:
        if (self.values is None) == (self.code_table is None):
            raise ValueError("give either values or code_table")
        return self


class Range(_Rule):
    kind: Literal["range"]
    column: str
    min: float | int | str | None = None
    max: float | int | str | None = None

    @model_validator(mode="after")
    def _a_bound(self) -> Range:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        return self


class Unique(_Rule):
    kind: Literal["unique"]
    columns: list[str] = Field(min_length=1)


class Reference(_Rule):
    kind: Literal["reference"]
    column: str
    dataset: str
    to: str


class Freshness(_Rule):
    kind: Literal["freshness"]
    column: str = "_synced_at"
    max_age: str

    @property
    def age(self) -> timedelta:
        number, unit = _AGE.match(self.max_age).groups()  # type: ignore[union-attr]
        unit_name = {"m": "minutes", "h": "hours", "d": "days"}[unit]
        return timedelta(**{unit_name: int(number)})

    @model_validator(mode="after")
    def _age(self) -> Freshness:
        if not _AGE.match(self.max_age):
            raise ValueError(f"max_age {self.max_age!r} is not like 90m, 6h or 2d")
        return self


class RowCount(_Rule):
    kind: Literal["row_count"]
    tolerance: float = Field(0.2, gt=0, le=10)  # allowed change against the recent median
    history: int = Field(7, ge=1, le=100)        # the runs the median is taken over
    min_rows: int = Field(1, ge=0)


class Schema(_Rule):
    kind: Literal["schema"]
    columns: dict[str, str] | None = None  # expected {column: type}; else the previous run's


class Available(_Rule):
    kind: Literal["available"]  # the sync that loads the dataset succeeded on its last run


Rule = Annotated[NotNull | Format | CheckDigit | Domain | Range | Unique | Reference
                 | Freshness | RowCount | Schema | Available, Field(discriminator="kind")]


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str
    correction_days: int = Field(5, ge=1, le=60)  # working days the department has to correct
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _names(self) -> RuleSet:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule {rule.name} is named twice")
            seen.add(rule.name)
        return self


def dimension(rule: Any) -> str:
    return rule.dimension or DEFAULT_DIMENSION[rule.kind]


def _where(err: ValidationError, data: dict) -> str:
    """'rule uscc_ok (rules.2): ...' for the first error: the rule by name when it has one."""
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"]]
    label = ".".join(loc) or "file"
    if len(loc) >= 2 and loc[0] == "rules" and loc[1].isdigit():
        rules = data.get("rules") or []
        index = int(loc[1])
        name = rules[index].get("name") if index < len(rules) and isinstance(
            rules[index], dict) else None
        label = f"rule {name or '#' + str(index + 1)} ({'.'.join(loc[2:]) or 'kind'})"
    return f"{label}: {first['msg']}"


def parse(text: str, dataset: str | None = None) -> RuleSet:
    """A rule set from YAML text; InvalidInput naming the dataset and the rule at fault."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InvalidInput(f"dataset {dataset or '?'}: the rules are not YAML: {err}") from err
    if not isinstance(data, dict):
        raise InvalidInput(f"dataset {dataset or '?'}: the rules must be a mapping with "
                           "dataset and rules")
    if dataset is not None:
        data.setdefault("dataset", dataset)
        if data["dataset"] != dataset:
            raise InvalidInput(f"dataset {dataset}: the file is for {data['dataset']}")
    try:
        return RuleSet.model_validate(data)
    except ValidationError as err:
        raise InvalidInput(f"dataset {data.get('dataset', '?')}, {_where(err, data)}") from err
