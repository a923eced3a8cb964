"""`cityops backup FILE` and `cityops restore FILE --database NAME` (infra/backup/)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer


def backup(
    out: Annotated[Path, typer.Argument(help="the encrypted backup file to write (new)")],
    folder: Annotated[list[Path] | None, typer.Option(
        help="a folder to take beside the database (repeatable); default: settings "
             "backup_folders, else the broker's state folder")] = None,
) -> None:
    """Back up the database and the platform's folders, encrypted with CITYOPS_BACKUP_KEY."""
    from cityops.settings import load_settings
    from infra.backup.archive import create

    manifest = create(load_settings(), out, folder or None)
    typer.echo(json.dumps(manifest, ensure_ascii=False))


def restore(
    file: Annotated[Path, typer.Argument(help="a file written by `cityops backup`")],
    database: Annotated[str, typer.Option(help="the new database to restore into")],
    files_to: Annotated[Path | None, typer.Option(
        help="where the backed-up folders go (never over the live ones)")] = None,
    superuser_url: Annotated[str | None, typer.Option(
        help="a superuser's URL on the target server (TimescaleDB's restore functions need "
             "one); default: the local stack's postgres over its unix socket; also "
             "CITYOPS_DATABASE_SUPERUSER_URL")] = None,
) -> None:
    """Restore a backup into a new database owned by CITYOPS_DATABASE_URL's role; point
    CITYOPS_DATABASE_URL at it to run the platform on the restored data."""
    from cityops.settings import load_settings
    from infra.backup.archive import Superuser
    from infra.backup.restore import restore as run_restore

    url = superuser_url or os.environ.get("CITYOPS_DATABASE_SUPERUSER_URL") or None
    manifest = run_restore(load_settings(), file, database, Superuser(url), files_to)
    typer.echo(json.dumps(manifest, ensure_ascii=False))


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)
