"""Rules as data: the validated shape of a rule, from YAML or from the `rules` table.

A rule watches one point name on the devices its target selects, and raises an alarm of its
severity on a device when its condition holds. The same models validate YAML files
(`cityops rules load FILE`), rows read back by the worker, and (later) the API's rule edits.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from cityops.errors import ConfigError
from cityops.wire import ID_PATTERN, Identifier

EXAMPLES_DIR = Path(__file__).parent / "examples"


class Severity(StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Model):
    """Which devices' point a rule watches; every given field must match (empty = any)."""

    point: Identifier | None = Field(None, description="point name; not used by `offline`")
    devices: list[Identifier] = []
    profile: str | None = Field(None, description="profile model, e.g. ups-3kva")
    gateway: Identifier | None = None


class _RuleBase(_Model):
    id: Annotated[str, Field(pattern=ID_PATTERN)]
    title: str = ""
    severity: Severity
    target: Target
    enabled: bool = True
    auto_clear: bool = Field(True, description="clear the alarm when the condition goes away")
    regroup_s: float = Field(
        300, ge=0,
        description="a raise this soon after the alarm cleared reopens it (count + 1) instead"
        " of opening a new one: one flapping sensor, one alarm",
    )

    @model_validator(mode="after")
    def _needs_point(self) -> _RuleBase:
        if self.target.point is None and self.kind != "offline":  # type: ignore[attr-defined]
            raise ValueError("target.point is required for this kind of rule")
        return self


class ThresholdRule(_RuleBase):
    """Value beyond a limit for at least `for_s`; clears once back past `clear` (hysteresis)."""

    kind: Literal["threshold"]
    above: float | None = None
    below: float | None = None
    clear: float | None = Field(None, description="clear level; default the limit itself")
    for_s: float = Field(0, ge=0, description="minimum duration beyond the limit")

    @model_validator(mode="after")
    def _one_limit(self) -> ThresholdRule:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of `above` and `below`")
        if self.clear is not None:
            if self.above is not None and self.clear > self.above:
                raise ValueError("`clear` must not be above `above` (hysteresis goes downwards)")
            if self.below is not None and self.clear < self.below:
                raise ValueError("`clear` must not be below `below` (hysteresis goes upwards)")
        return self


class RateRule(_RuleBase):
    """|change per second| over `window_s` above `max_per_s`; clears at or below `clear_per_s`."""

    kind: Literal["rate_of_change"]
    max_per_s: float = Field(gt=0)
    window_s: float = Field(60, gt=0)
    clear_per_s: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _clear_below_max(self) -> RateRule:
        if self.clear_per_s is not None and self.clear_per_s > self.max_per_s:
            raise ValueError("`clear_per_s` must not exceed `max_per_s`")
        return self


class OfflineRule(_RuleBase):
    """No reading from the device for `after_s` seconds; clears on its next reading."""

    kind: Literal["offline"]
    after_s: float = Field(gt=0)


class AnomalyRule(_RuleBase):
    """A reading far from what its recent history predicts (robust z-score).

    `mad`: median and median absolute deviation of the readings in `window_s`.
    `ewma`: exponentially weighted mean and deviation (`alpha`) over `window_s`.
    `stl`: for points with a daily cycle: STL (statsmodels) on `bucket_s` means over
    `window_s` (at least two periods), refitted every `refit_s`; the z-score is the reading's
    distance from trend + season, in robust units of the residuals.
    """

    kind: Literal["anomaly"]
    method: Literal["mad", "ewma", "stl"] = "mad"
    window_s: float = Field(3600, gt=0)
    z: float = Field(4.0, gt=0)
    clear_z: float | None = Field(None, ge=0, description="default z / 2")
    min_points: int = Field(30, ge=3)
    alpha: float = Field(0.1, gt=0, le=1)
    period_s: float = Field(86400, gt=0)
    bucket_s: float = Field(600, gt=0)
    refit_s: float = Field(3600, gt=0)

    @model_validator(mode="after")
    def _stl_window(self) -> AnomalyRule:
        if self.clear_z is not None and self.clear_z > self.z:
            raise ValueError("`clear_z` must not exceed `z`")
        if self.method == "stl":
            if self.window_s < 2 * self.period_s:
                raise ValueError("stl needs `window_s` of at least two periods")
            if self.period_s / self.bucket_s < 2 or self.period_s % self.bucket_s:
                raise ValueError("`period_s` must be a multiple (>= 2) of `bucket_s`")
        return self

    @property
    def clear_level(self) -> float:
        return self.clear_z if self.clear_z is not None else self.z / 2


Rule = Annotated[
    ThresholdRule | RateRule | OfflineRule | AnomalyRule, Field(discriminator="kind")
]


class RuleFile(_Model):
    rules: list[Rule]

    @model_validator(mode="after")
    def _unique_ids(self) -> RuleFile:
        ids = [r.id for r in self.rules]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"rule ids must be unique: {', '.join(dupes)}")
        return self


_RULE = TypeAdapter(Rule)


def _problems(err: ValidationError, prefix: str = "") -> str:
    return "; ".join(
        f"{prefix}{'.'.join(str(p) for p in e['loc']) or '(rule)'}: {e['msg']}"
        for e in err.errors()
    )


def parse_rule(data: Any) -> Rule:
    """One rule from a dict (a row's body, an API request); ConfigError names the field."""
    try:
        return _RULE.validate_python(data)
    except ValidationError as err:
        raise ConfigError(f"invalid rule: {_problems(err)}") from err


def load_rule_file(path: Path) -> list[Rule]:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read rule file {path}: {err}") from err
    try:
        return list(RuleFile.model_validate(raw).rules)
    except ValidationError as err:
        raise ConfigError(f"invalid rule file {path}: {_problems(err)}") from err


def rule_body(rule: Rule) -> str:
    return orjson.dumps(rule.model_dump(mode="json")).decode()
