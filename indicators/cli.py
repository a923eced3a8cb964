"""`cityops indicators ...`: load the indicator system, compute periods, run the scheduler."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="The indicator system (指标体系).", no_args_is_help=True)


def _settings():
    from cityops.logging import configure_logging
    from cityops.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level)
    return settings


async def _connect(settings):
    from psycopg import AsyncConnection

    return await AsyncConnection.connect(settings.database_url.get_secret_value(),
                                         autocommit=True)


def _calendar(settings):
    from cityevents.calendar import WorkCalendar

    return WorkCalendar(settings.calendar_extra_holidays, settings.calendar_extra_workdays)


@app.command("load")
def load(file: Annotated[Path | None, typer.Option(
        help="a YAML of classes and indicators (default: the starter set)")] = None) -> None:
    """Create or update the classes and indicators of a file (the starter set by default)."""
    import yaml

    from indicators import store

    settings = _settings()
    data = yaml.safe_load(file.read_text()) if file else store.starter()

    async def run() -> int:
        async with await _connect(settings) as conn, conn.transaction():
            return await store.load(conn, data, "cli")

    typer.echo(f"{asyncio.run(run())} indicator(s) loaded")


@app.command("compute")
def compute(
    code: Annotated[str | None, typer.Option(help="one indicator (default: every enabled)")]
    = None,
    since: Annotated[datetime | None, typer.Option(
        help="recompute every period from this date (default: the latest complete one)")]
    = None,
) -> None:
    """Compute the latest complete period of each indicator (or every period since a date)."""
    from cityevents.calendar import COUNTY_TZ, now_utc
    from indicators import compute as c

    settings = _settings()

    async def run() -> list:
        now = now_utc()
        async with await _connect(settings) as conn:
            if since is None and code is None:
                return await c.compute_due(conn, now, cal=_calendar(settings))
            out = []
            for ind in await c.enabled(conn, code):
                start = (since or now).replace(tzinfo=(since or now).tzinfo or COUNTY_TZ)
                out += await c.backfill(conn, ind, start, now)
            return out

    outcomes = asyncio.run(run())
    failed = [o for o in outcomes if o.status == "failed"]
    for o in failed:
        typer.echo(f"FAILED {o.code} {o.period_start:%Y-%m-%d %H:%M}: {o.error}", err=True)
    typer.echo(f"{len(outcomes)} period(s) computed, {len(failed)} failed")
    raise typer.Exit(1 if failed else 0)


@app.command("worker")
def worker(interval_s: Annotated[float, typer.Option(min=5.0)] = 60.0) -> None:
    """Compute each indicator's period as soon as it is complete, and generate the last
    month's and week's reports once they are complete, forever."""
    import logging

    from cityevents.calendar import now_utc
    from cityops.reconnect import DATABASE_LOST, database_backoff
    from indicators import compute as c
    from indicators.reports import archive

    settings = _settings()
    font = str(settings.report_font_file) if settings.report_font_file else None
    log = logging.getLogger("indicators.worker")

    async def loop() -> None:
        # a database lost (a failover) is tried again after 1-8 s, not a whole interval: a
        # period already computed is skipped (compute_due), so a round run again is harmless
        backoff = database_backoff()
        while True:
            try:
                async with await _connect(settings) as conn:
                    done = await c.compute_due(conn, now_utc(), cal=_calendar(settings))
                    reports = await archive.generate_due(conn, now_utc(), font)
                if done or reports:
                    log.info("computed %d indicator period(s), %d report(s)", len(done),
                             len(reports))
                if backoff.attempt:
                    log.info("indicator rounds resumed: the database answers again")
                backoff.reset()
                wait_s = interval_s  # a schedule, not a wait for a condition
            except (OSError, *DATABASE_LOST) as err:
                wait_s = backoff.next_delay()
                log.warning("indicator round failed: %s; again in %.0f s", err, wait_s)
            await asyncio.sleep(wait_s)

    from cityops.running import run_async as _run_async

    _run_async(loop())


@app.command("report")
def report(
    kind: Annotated[str, typer.Option(help="monthly or weekly")] = "monthly",
    period: Annotated[datetime | None, typer.Option(
        help="any day of the month or week (default: the last complete one)")] = None,
    out: Annotated[Path | None, typer.Option(help="also write the files into this folder")]
    = None,
) -> None:
    """Generate a 城市运行分析报告 into the archive (PDF, DOCX, XLSX)."""
    from cityevents.calendar import COUNTY_TZ, now_utc
    from indicators.model import last_complete
    from indicators.reports import archive

    settings = _settings()
    font = str(settings.report_font_file) if settings.report_font_file else None
    day = (period.date() if period else
           last_complete(kind, now_utc(), COUNTY_TZ).astimezone(COUNTY_TZ).date())

    async def run() -> dict:
        async with await _connect(settings) as conn:
            made = await archive.generate(conn, kind, day, "cli", font)
            if out:
                out.mkdir(parents=True, exist_ok=True)
                for fmt in archive.FORMATS:
                    _, data = await archive.file(conn, made["id"], fmt)
                    (out / f"report-{made['id']}.{fmt}").write_bytes(data)
            return made

    made = asyncio.run(run())
    typer.echo(f"report {made['id']}: {made['title']} ({made['pdf_bytes']} bytes of PDF)")
