"""`cityops catalogue ...`: the 一本账 kept current from the governed datasets."""

from __future__ import annotations

import typer

from cityops.logging import configure_logging
from cityops.settings import load_settings

app = typer.Typer(help="一本账: catalogue entries of the governed datasets")


@app.command("sync")
def sync(dataset: str = typer.Option(None, help="one dataset id; default: every one")) -> None:
    """Register or refresh the catalogue entry of each governed dataset; prints each."""
    import psycopg

    from datafoundation.catalogue import governed

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_levels)
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        done = ({dataset: governed.sync_dataset(conn, dataset)} if dataset
                else governed.sync_all(conn))
    for name, (code, outcome) in done.items():
        typer.echo(f"{name}\t{code}\t{outcome}")
