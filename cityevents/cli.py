"""`cityops events ...`: the events watcher and a one-off supervision sweep."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="City events (alarms -> events, supervision).", no_args_is_help=True)


def _settings():
    from cityops.logging import configure_logging
    from cityops.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level)
    return settings


@app.command("watch")
def watch(
    client_id: Annotated[str, typer.Option(
        help="MQTT client id; unique per watcher (default cityops-events-watch-{deployment})")
    ] = "",
    sweep_interval_s: Annotated[float, typer.Option(min=1.0)] = 60.0,
) -> None:
    """Open events from alarms of mapped rules; raise supervision on red lights."""
    from cityevents.watch import Watcher
    from cityops.running import run_async as _run_async
    from cityops.settings import deployment_of

    settings = _settings()
    # the deployment in the id: another deployment's watcher on the same broker would take
    # over this one's persistent session
    client_id = client_id or f"cityops-events-watch-{deployment_of(settings)}"
    _run_async(Watcher(settings, client_id, sweep_interval_s).run())


@app.command("sweep")
def sweep() -> None:
    """Raise supervision on every event whose light is red and remind late tasks, once."""
    import asyncio

    from psycopg import AsyncConnection

    from cityevents import supervision
    from cityevents.calendar import WorkCalendar, now_utc
    from cityevents.reminders import reminder_policy

    settings = _settings()

    async def once() -> supervision.Swept:
        cal = WorkCalendar(settings.calendar_extra_holidays, settings.calendar_extra_workdays)
        url = settings.database_url.get_secret_value()
        async with await AsyncConnection.connect(url, autocommit=True) as conn:
            return await supervision.sweep(conn, cal, now_utc(), reminder_policy(settings))

    done = asyncio.run(once())
    typer.echo(f"supervision raised on {len(done.supervised)} event(s): {done.supervised}")
    typer.echo(f"reminders (催办) sent: {len(done.reminded)}")
