"""`cityops rules ...`: load rule files into the database and list what is there."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Alarm rules (rules are data: YAML files or rows).", no_args_is_help=True)


@app.command("load")
def load(files: Annotated[list[Path], typer.Argument(help="rule YAML files")]) -> None:
    """Validate rule files, then insert or replace their rules by id."""
    from cityops.logging import configure_logging
    from cityops.settings import load_settings
    from ingestion.rules.model import load_rule_file
    from ingestion.rules.store import save_rules

    settings = load_settings()
    configure_logging(settings.log_level)
    rules = [rule for path in files for rule in load_rule_file(path)]
    n = save_rules(settings.database_url.get_secret_value(), rules)
    typer.echo(f"saved {n} rule(s)")


@app.command("list")
def list_() -> None:
    """One line per rule: id, kind, severity, enabled, title."""
    from cityops.settings import load_settings
    from ingestion.rules.store import list_rules

    settings = load_settings()
    for r in list_rules(settings.database_url.get_secret_value()):
        state = "enabled" if r["enabled"] else "disabled"
        typer.echo(f"{r['id']}\t{r['kind']}\t{r['severity']}\t{state}\t{r['title']}")
