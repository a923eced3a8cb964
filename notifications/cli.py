"""`cityops notify worker`: the delivery worker (notifications/worker.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

app = typer.Typer(help="Notifications: e-mail, group robots, SMS.", no_args_is_help=True)


@app.command("worker")
def worker(
    interval_s: Annotated[float, typer.Option(min=0.2, help="seconds between passes")] = 5.0,
    escalate_after_min: Annotated[float, typer.Option(
        min=1.0, help="a critical alarm unacknowledged this long is escalated")] = 15.0,
    max_attempts: Annotated[int, typer.Option(min=1)] = 6,
    backoff_s: Annotated[float, typer.Option(min=1.0, help="first retry delay; doubles")] = 30.0,
) -> None:
    """Find new notifications, queue their deliveries and send them, retrying failures."""
    from cityevents.calendar import WorkCalendar
    from cityops.logging import configure_logging
    from cityops.running import run_async as _run_async
    from cityops.settings import load_settings
    from notifications.worker import Policy, run

    settings = load_settings()
    configure_logging(settings.log_level)
    cal = WorkCalendar(settings.calendar_extra_holidays, settings.calendar_extra_workdays)
    policy = Policy(escalate_after=timedelta(minutes=escalate_after_min),
                    backoff=timedelta(seconds=backoff_s), max_attempts=max_attempts)
    _run_async(run(settings.database_url.get_secret_value(),
                   settings.secret_key.get_secret_value(), cal, policy, interval_s))
