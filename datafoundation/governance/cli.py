"""`cityops governance ...`: load the standards, run the layer models, show lineage."""

from __future__ import annotations

from pathlib import Path

import psycopg
import typer

from cityops.logging import configure_logging
from cityops.settings import load_settings

app = typer.Typer(help="数据治理: data elements, code tables, layer models, lineage")
FOLDER = typer.Option(None, "--dir", help="the governance folder (default: the shipped one)")
MODELS = typer.Argument(None, help="model names (see governance/models/)")


def _connect() -> psycopg.Connection:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_levels)
    return psycopg.connect(settings.database_url.get_secret_value(), autocommit=True)


@app.command("load")
def load(folder: Path | None = FOLDER) -> None:
    """Load the data elements, code tables and value maps from governance/standards/, and
    record the models of governance/models/ (what runs after which sync)."""
    from datafoundation.governance import standards
    from datafoundation.governance.run import record_all

    with _connect() as conn:
        counts = standards.load(conn, folder or standards.DEFAULT_DIR)
        counts["models"] = len(record_all(conn, folder or standards.DEFAULT_DIR))
    typer.echo(", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()) + " loaded")


@app.command("run")
def run(model: list[str] = MODELS,
        all_: bool = typer.Option(False, "--all", help="every declared model"),
        folder: Path | None = FOLDER) -> None:
    """Build layer models now, in this process, upstream first; exits non-zero naming the
    model and dataset that failed (the others still run; their targets keep their data)."""
    from datafoundation.governance import run as runner
    from datafoundation.governance.standards import DEFAULT_DIR

    if bool(model) == all_:
        raise typer.BadParameter("give model names or --all, not both or neither")
    with _connect() as conn:
        outcome = runner.run(conn, None if all_ else model, folder or DEFAULT_DIR)
    for name, result in outcome.items():
        typer.echo(f"{name}: {result}")


@app.command("defer")
def defer(model: str, folder: Path | None = FOLDER) -> None:
    """Queue one model run for the sync workers (`cityops sync worker`)."""
    import asyncio

    from datafoundation.governance.jobs import defer as queue
    from datafoundation.jobs import build_app

    settings = load_settings()

    async def go() -> int | None:
        app = build_app(settings)
        async with app.open_async():
            return await queue(app, model, str(folder) if folder else None)

    job = asyncio.run(go())
    typer.echo(f"queued as job {job}" if job else "already queued")


@app.command("map-field")
def map_field(dataset: str, field: str, element: str) -> None:
    """Map a dataset's field to a data element (数据元): it takes the element's sensitivity and
    mask, which every data service read then applies."""
    from datafoundation.governance.standards import map_field as do_map

    with _connect() as conn:
        do_map(conn, dataset, field, element)
    typer.echo(f"{dataset}.{field} → {element}")
