"""`cityops governance ...`: load the standards, run the layer models, show lineage."""

from __future__ import annotations

from pathlib import Path

import psycopg
import typer

from cityops.logging import configure_logging
from cityops.settings import load_settings

app = typer.Typer(help="数据治理: data elements, code tables, layer models, lineage")
FOLDER = typer.Option(None, "--dir", help="the governance folder (default: the shipped one)")


def _connect() -> psycopg.Connection:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_levels)
    return psycopg.connect(settings.database_url.get_secret_value(), autocommit=True)


@app.command("load")
def load(folder: Path | None = FOLDER) -> None:
    """Load the data elements, code tables and value maps from governance/standards/."""
    from datafoundation.governance import standards

    with _connect() as conn:
        counts = standards.load(conn, folder or standards.DEFAULT_DIR)
    typer.echo(", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()) + " loaded")
