"""`cityops backup` / `cityops restore`: the database (pg_dump's custom format) and the platform's
folders in one tar stream, encrypted (infra/backup/crypto.py).

Uploaded files (event attachments, catalogue documents) are rows of `objects` and travel with
the database; the folders are what lives beside it: the broker's accounts and ACL, a county's
basemap, file-drop folders (settings `backup_folders`).

A restore decrypts and unpacks everything first, so a wrong key or an altered file stops it
before any database is touched; then it makes a new database owned by the platform's role
and loads the dump between TimescaleDB's timescaledb_pre_restore() and post_restore() (its
catalogue must not run background jobs while hypertables come back). Both functions and the
load of TimescaleDB's catalogue need a superuser: the local stack's `postgres` over its unix
socket, or `--superuser-url` for a server of the county's own.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cityops.errors import ConfigError, InvalidInput, StackError
from cityops.settings import Settings
from infra.backup.crypto import EncryptingWriter
from infra.local import postgres

PG_BIN = Path(f"/usr/lib/postgresql/{postgres.PG_MAJOR}/bin")
FORMAT = 1


def with_database(url: str, database: str) -> str:
    """The same server(s) and role, another database (multi-host URLs kept as they are)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _run(argv: list[str], what: str, timeout_s: float = 3600) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise StackError(f"{what} failed: {err}") from err
    if done.returncode != 0:
        detail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise StackError(f"{what} failed (exit {done.returncode}): {detail}")
    return done.stdout


@dataclass(frozen=True)
class Superuser:
    """How to reach the server as a superuser: a URL, or (None) the local stack's cluster."""

    url: str | None = None

    def argv(self, program: str, database: str) -> list[str]:
        if self.url:
            return [str(PG_BIN / program), "-d", with_database(self.url, database)]
        return ["runuser", "-u", "postgres", "--", str(PG_BIN / program),
                "-h", postgres.SOCKET_DIR, "-p", str(postgres.PORT), "-d", database]

    def sql(self, database: str, statement: str, what: str) -> str:
        return _run([*self.argv("psql", database), "-X", "-q", "-t", "-A",
                     "-v", "ON_ERROR_STOP=1", "-c", statement], what)


def _key(settings: Settings) -> str:
    key = settings.backup_key.get_secret_value() if settings.backup_key else ""
    if not key:
        raise ConfigError("CITYOPS_BACKUP_KEY is not set: backups are always encrypted")
    return key


def folders_of(settings: Settings) -> list[Path]:
    """The folders to back up: the settings' list, else the broker's state folder."""
    if settings.backup_folders:
        return list(settings.backup_folders)
    broker = settings.broker_state_dir or settings.state_dir / "broker"
    return [broker] if broker.exists() else []


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
    tar.addfile(info, io.BytesIO(data))


def create(settings: Settings, out: Path, folders: list[Path] | None = None) -> dict:
    """Write an encrypted backup to `out` (never over an existing file); returns its manifest."""
    key, folders = _key(settings), folders_of(settings) if folders is None else folders
    for folder in folders:
        if not folder.is_dir():
            raise InvalidInput(f"backup folder {folder} does not exist or is not a folder")
    url = settings.database_url.get_secret_value()
    names = {f"{i}-{folder.name}": folder for i, folder in enumerate(folders)}
    manifest = {"format": FORMAT, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "database": urlsplit(url).path.lstrip("/"),
                "folders": {name: str(folder.resolve()) for name, folder in names.items()}}
    with tempfile.TemporaryDirectory(prefix="cityops-backup-") as tmp:
        dump = Path(tmp) / "database.dump"
        _run([str(PG_BIN / "pg_dump"), "--format=custom", "--file", str(dump), "-d", url],
             "pg_dump of the platform's database")
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as err:
            raise InvalidInput(f"{out} exists: a backup never overwrites a file") from err
        with os.fdopen(fd, "wb") as sink:
            writer = EncryptingWriter(sink, key)
            with tarfile.open(fileobj=writer, mode="w|") as tar:  # type: ignore[call-overload]
                _add_bytes(tar, "manifest.json", json.dumps(manifest, indent=1).encode())
                tar.add(dump, "database.dump")
                for name, folder in names.items():
                    tar.add(folder, f"files/{name}")
            writer.close()
    manifest["bytes"] = out.stat().st_size
    return manifest
