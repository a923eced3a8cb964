"""Restore a backup made by infra/backup/archive.py into a new database (see there)."""

from __future__ import annotations

import json
import re
import shutil
import tarfile
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cityops.errors import InvalidInput, PlatformError, StackError
from cityops.settings import Settings
from infra.backup.archive import FORMAT, Superuser, _key, _run, with_database
from infra.backup.crypto import DecryptingReader
from infra.db.admin import drop_database

IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"


def _unpack(path: Path, key: str, into: Path) -> dict:
    """Decrypt and unpack all of it (every chunk verified) before anything is restored."""
    if not path.is_file():
        raise InvalidInput(f"backup file {path} does not exist")
    with path.open("rb") as source:
        reader = DecryptingReader(source, key, str(path))
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
                # "data": no absolute paths, no "..", no links out, no devices
                tar.extractall(into, filter="data")
        except tarfile.TarError as err:
            raise InvalidInput(f"{path}: the decrypted content is not a backup: {err}") from err
    try:
        manifest = json.loads((into / "manifest.json").read_text())
    except (OSError, ValueError) as err:
        raise InvalidInput(f"{path} has no readable manifest.json: {err}") from err
    if manifest.get("format") != FORMAT or not (into / "database.dump").is_file():
        raise InvalidInput(f"{path}: backup format {manifest.get('format')!r} is not {FORMAT}"
                           " or the database dump is missing")
    return manifest


def restore(settings: Settings, path: Path, database: str, superuser: Superuser,
            files_to: Path | None = None) -> dict:
    """Restore into the new database `database` (refused if it exists) owned by the role of
    `database_url`; the folders go under `files_to` (never over the live ones)."""
    if not re.match(IDENTIFIER, database):
        raise InvalidInput(f"database name {database!r} must match {IDENTIFIER}")
    owner = unquote(urlsplit(settings.database_url.get_secret_value()).username or "")
    if not re.match(IDENTIFIER, owner):
        raise InvalidInput(f"the role of CITYOPS_DATABASE_URL ({owner!r}) is not a plain name")
    key = _key(settings)
    with tempfile.TemporaryDirectory(prefix="cityops-restore-") as tmp:
        work = Path(tmp)
        manifest = _unpack(path, key, work)
        if (work / "files").is_dir() and files_to is None:
            raise InvalidInput("the backup holds folders: give --files-to DIR for them")
        if superuser.url is None:  # pg_restore runs as postgres and reads the dump itself
            shutil.chown(work, "postgres")
            shutil.chown(work / "database.dump", "postgres")
        exists = superuser.sql("postgres", "SELECT 1 FROM pg_database WHERE datname ="
                               f" '{database}'", "looking for the database")
        if exists.strip():
            raise InvalidInput(f"database {database} exists: restore into a new database")
        superuser.sql("postgres", f'CREATE DATABASE "{database}" OWNER "{owner}"',
                      f"CREATE DATABASE {database}")
        try:
            _load(superuser, database, work / "database.dump")
        except PlatformError:
            _drop(superuser, database)
            raise
        manifest["restored_folders"] = _folders(work / "files", files_to)
    manifest["restored_database"] = database
    return manifest


def _load(superuser: Superuser, database: str, dump: Path) -> None:
    superuser.sql(database, "SELECT timescaledb_pre_restore()", "timescaledb_pre_restore()")
    # one transaction: one WAL flush instead of one per statement (1.8 s instead of 5.8 s for
    # the platform's schema here), and a failed load leaves nothing half-made
    _run([*superuser.argv("pg_restore", database), "--exit-on-error", "--single-transaction",
          "--no-password", str(dump)], f"pg_restore into {database}")
    superuser.sql(database, "SELECT timescaledb_post_restore()", "timescaledb_post_restore()")


def _drop(superuser: Superuser, database: str) -> None:
    """A half-restored database is removed, so a retry starts clean."""
    try:
        if superuser.url:
            drop_database(with_database(superuser.url, "postgres"), database)
        else:
            superuser.sql("postgres", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
                          f"DROP DATABASE {database}")
    except (StackError, OSError):
        pass  # the restore's own error is the one to report


def _folders(unpacked: Path, files_to: Path | None) -> dict[str, str]:
    if not unpacked.is_dir():
        return {}
    assert files_to is not None  # checked before the database was touched
    files_to.mkdir(parents=True, exist_ok=True)
    done = {}
    for folder in sorted(unpacked.iterdir()):
        target = files_to / folder.name
        if target.exists():
            raise InvalidInput(f"{target} exists: folders are restored into new places only")
        shutil.copytree(folder, target, symlinks=True)
        done[folder.name] = str(target)
    return done
