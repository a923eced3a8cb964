"""`cityops audit verify` and `cityops audit retention` (docs/security.md)."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="The audit log: verify its hash chain, apply its retention.",
                  no_args_is_help=True)


@app.command("verify")
def verify() -> None:
    """Recompute the hash chain; exit 1 naming the first broken entry."""
    from api.audit_chain import verify as run
    from cityops.settings import load_settings

    verdict = run(load_settings().database_url.get_secret_value())
    typer.echo(("ok: " if verdict.ok else "BROKEN: ") + verdict.detail)
    if not verdict.ok:
        raise typer.Exit(1)


@app.command("retention")
def retention(days: Annotated[int | None, typer.Option(
        help="keep this many days (at least 180; default CITYOPS_AUDIT_RETENTION_DAYS)")] = None,
) -> None:
    """Remove the rows older than the retention (the only way rows leave); the removal is
    itself recorded in the log and the chain re-anchored."""
    from api.audit_chain import apply_retention
    from cityops.errors import InvalidInput
    from cityops.settings import load_settings

    settings = load_settings()
    keep = settings.audit_retention_days if days is None else days
    if keep < 180:
        raise InvalidInput(f"--days {keep}: the audit log is kept at least 180 days")
    removed = apply_retention(settings.database_url.get_secret_value(), keep)
    typer.echo(f"removed {removed} audit rows older than {keep} days")
