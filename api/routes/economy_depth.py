"""Industrial economy in depth (issue 17 item 4): monthly series with January-February
together and 同口径 growth, the 规上 set per year, 用电看经济 colours, 亩均 scores. The computing
is datafoundation/economy/depth.py and signals.py."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from api.deps import Conn, require
from api.routes.economy import LOADERS, READERS
from api.schemas.economy_depth import (
    ColourGroup,
    MuGroup,
    MuScore,
    PowerWarning,
    ScaleSetOut,
    SeriesOut,
)
from cityops.errors import InvalidInput
from datafoundation.economy import depth, signals

router = APIRouter(tags=["economy"])
Year = Annotated[int, Path(ge=2000, le=2100)]
By = Annotated[Literal["town", "industry"], Query(description="town (or park) or industry")]


@router.get("/v1/economy/series/{year}", response_model=SeriesOut,
            dependencies=[Depends(require(*READERS))])
async def get_series(conn: Conn, year: Year,
                     measure: Annotated[str, Query(max_length=32)] = "value_added") -> dict:
    """Month and cumulative values ("01-02" together), with 同口径 growth."""
    return await depth.series(conn, measure, year)


@router.post("/v1/economy/scale-firms/{year}", response_model=ScaleSetOut,
             dependencies=[Depends(require(*LOADERS))])
async def derive_scale_firms(conn: Conn, year: Year) -> dict:
    """Record the year's 规上 set from the year before's revenue and the threshold in force."""
    return await depth.derive_scale_set(conn, year)


@router.get("/v1/economy/power-warnings", response_model=list[PowerWarning],
            dependencies=[Depends(require(*READERS))])
async def get_power_warnings(
    conn: Conn, month: Annotated[date, Query(description="any day of the last month")],
) -> list[dict]:
    """用电看经济: each firm's electricity growth against its value-added growth, coloured."""
    return await signals.power_warnings(conn, _checked(month))


@router.get("/v1/economy/power-colours", response_model=list[ColourGroup],
            dependencies=[Depends(require(*READERS))])
async def get_power_colours(
    conn: Conn, month: Annotated[date, Query(description="any day of the last month")],
    by: By = "town",
) -> list[dict]:
    """Firms per warning colour in each town (or park) or industry."""
    return signals.colours_by(await signals.power_warnings(conn, _checked(month)), by)


def _checked(month: date) -> date:
    if not 2000 <= month.year <= 2100:
        raise InvalidInput(f"month {month.isoformat()} is outside the years 2000..2100")
    if month.month == 1:
        raise InvalidInput("January is published with February: ask for February or later")
    return month


@router.get("/v1/economy/mu-scores/{year}", response_model=list[MuScore],
            dependencies=[Depends(require(*READERS))])
async def get_mu_scores(conn: Conn, year: Year) -> list[dict]:
    """亩均 scores of the year's firms with land recorded, best first."""
    return await signals.mu_scores(conn, year)


@router.get("/v1/economy/mu-scores/{year}/groups", response_model=list[MuGroup],
            dependencies=[Depends(require(*READERS))])
async def get_mu_groups(conn: Conn, year: Year, by: By = "town") -> list[dict]:
    """亩均 per town (or park) or industry: land, mean score, each measure per mu."""
    return signals.mu_by(await signals.mu_scores(conn, year), by)
