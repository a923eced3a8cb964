"""`cityops quality ...`: load a dataset's rules from YAML, run them now."""

from __future__ import annotations

from pathlib import Path

import typer

from cityops.logging import configure_logging
from cityops.settings import load_settings

app = typer.Typer(help="数据质量: quality rules per dataset, runs, scores", no_args_is_help=True)


@app.command("load")
def load(files: list[Path]) -> None:
    """Check and store the rules of each YAML file (one dataset per file); a rule that does
    not compile is refused naming dataset and rule, and nothing of that file is stored."""
    import psycopg

    from datafoundation.quality import load_file

    settings = load_settings()
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        for path in files:
            ruleset = load_file(conn, path, loaded_by="cli")
            typer.echo(f"{ruleset.dataset}: {len(ruleset.rules)} rule(s) loaded")


@app.command("run")
def run(dataset: str) -> None:
    """Run every rule of DATASET now and print the results."""
    import psycopg

    from cityevents.calendar import WorkCalendar
    from datafoundation.quality import run_dataset

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_levels)
    url = settings.database_url.get_secret_value()
    cal = WorkCalendar(settings.calendar_extra_holidays, settings.calendar_extra_workdays)
    run_id = run_dataset(url, dataset, "manual", cal)
    with psycopg.connect(url) as conn:
        score, rows = conn.execute("SELECT score, row_count FROM quality.runs WHERE id = %s",
                                   (run_id,)).fetchone()
        typer.echo(f"run {run_id}: {rows} rows, score {score}")
        for rule, dim, failed, checked, detail in conn.execute(
                "SELECT rule, dimension, failed, checked, detail FROM quality.results "
                "WHERE run_id = %s ORDER BY rule", (run_id,)).fetchall():
            mark = "ok  " if failed == 0 else "FAIL"
            typer.echo(f"  {mark} {rule} [{dim}] {failed}/{checked} {detail}")
