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


@app.command("range")
def range_(sync_id: int, run_id: int, range_no: int) -> None:
    """Load (or resume) one key range of a split first load (what a range job does)."""
    from datafoundation.split import run_range

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_levels)
    last = run_range(settings.database_url.get_secret_value(),
                     settings.secret_key.get_secret_value(), sync_id, run_id, range_no)
    typer.echo(f"range {range_no} done" + ("; the run succeeded" if last else ""))


@app.command("worker")
def worker(concurrency: int = typer.Option(2, min=1, max=16)) -> None:
    """Take sync runs from the queue `sync` (start several, on several machines, to share
    them); also queues the syncs whose cron schedule is due, every minute."""
    import asyncio

    from datafoundation.jobs import run_worker

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_levels)
    asyncio.run(run_worker(settings, concurrency))


@app.command("defer")
def defer(sync_id: int) -> None:
    """Queue one run of a sync for the workers."""
    import asyncio

    from datafoundation.jobs import build_app
    from datafoundation.jobs import defer as defer_run

    async def main() -> int | None:
        app = build_app(load_settings())
        async with app.open_async():
            return await defer_run(app, sync_id)

    job = asyncio.run(main())
    typer.echo(f"queued as job {job}" if job else f"sync {sync_id} is already queued")


@app.command("export")
def export(sync_id: int,
           engine: str = typer.Option("seatunnel", help="seatunnel (HOCON) or datax (JSON)")
           ) -> None:
    """Print a sync as an Apache SeaTunnel job config or a DataX job (passwords left as
    ${SOURCE_PASSWORD} / ${TARGET_PASSWORD} placeholders)."""
    import psycopg

    from cityops.errors import InvalidInput
    from datafoundation.export import datax_job, seatunnel_config

    makers = {"seatunnel": seatunnel_config, "datax": datax_job}
    if engine not in makers:
        raise InvalidInput(f"--engine: one of {', '.join(makers)}, not {engine!r}")
    url = load_settings().database_url.get_secret_value()
    with psycopg.connect(url) as conn:
        typer.echo(makers[engine](conn, sync_id, url))


@app.command("cdc")
def cdc(sync_id: int) -> None:
    """Follow a MariaDB/MySQL source's binlog for a sync of mode cdc until stopped."""
    import signal
    import threading

    from datafoundation.cdc import follow

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_levels)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    follow(settings.database_url.get_secret_value(), settings.secret_key.get_secret_value(),
           sync_id, stop)
