"""`cityops sync ...`: run a sync now, in this process."""

from __future__ import annotations

import typer

from cityops.logging import configure_logging
from cityops.settings import load_settings

app = typer.Typer(help="数据汇聚: sync department systems into the raw layer")


@app.command("run")
def run(sync_id: int) -> None:
    """Run (or resume) one sync and print its run id."""
    from datafoundation.runner import run_sync

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_levels)
    run_id = run_sync(settings.database_url.get_secret_value(),
                      settings.secret_key.get_secret_value(), sync_id)
    typer.echo(f"run {run_id} succeeded")
