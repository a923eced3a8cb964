"""`cityops economy generate|import`: the demo dataset and loading indicator files."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Industrial economy (规上工业) indicators.", no_args_is_help=True)


@app.command("generate")
def generate(
    out: Annotated[Path, typer.Option(help="CSV file to write")],
    firms: Annotated[int, typer.Option(min=1, max=5000)] = 320,
    seed: int = 20261123,
    until: Annotated[str, typer.Option(help="last month, YYYY-MM")] = "2026-10",
) -> None:
    """Write a realistic demo dataset for a county of Suixi's size (made-up firms)."""
    from cityops.errors import PlatformError
    from datafoundation.economy.generate import generate as make

    try:
        year, month = (int(x) for x in until.split("-"))
        last = date(year, month, 1)
    except ValueError as err:
        raise PlatformError(f"--until {until!r}: use YYYY-MM") from err
    text = make(firms, seed, last)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {len(text.splitlines()) - 1} rows for {firms} enterprises to {out}")


@app.command("import")
def import_(file: Path) -> None:
    """Load an indicator file (CSV or .xlsx): all rows, or none with a per-row report."""
    import asyncio

    from psycopg import AsyncConnection

    from cityops.errors import InvalidInput
    from cityops.logging import configure_logging
    from cityops.settings import load_settings
    from datafoundation.economy.store import import_file

    settings = load_settings()
    configure_logging(settings.log_level)

    data = file.read_bytes()

    async def load():
        url = settings.database_url.get_secret_value()
        async with await AsyncConnection.connect(url, autocommit=True) as conn:
            return await import_file(conn, file.name, data, "cli")

    try:
        result = asyncio.run(load())
    except InvalidInput as err:
        for row in err.context.get("rows", [])[:50]:
            typer.echo(f"row {row['row']}: {'; '.join(row['errors'])}", err=True)
        raise
    typer.echo(f"imported {result.rows_loaded} rows of {result.enterprises} enterprises"
               f" (batch {result.batch_id}, read as {result.encoding})")
