"""Numbered SQL migrations (infra/db/migrations/NNN_name.sql), each applied once, in order,
each in its own transaction, recorded in schema_migrations."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from cityops.errors import ConfigError, SinkUnavailable

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ConfigError(f"migration file {path.name} must be named NNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ConfigError(f"two migrations share a number in {directory}")
    return found


def _apply_job_queue_schema(conn: psycopg.Connection) -> None:
    """The job queue's tables come from procrastinate itself (the control plane's `cloud`
    extra); hosts installed without it have no job queue to prepare."""
    try:
        from procrastinate.schema import SchemaManager
    except ImportError:
        return
    exists = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()[0]
    if not exists:
        with conn.transaction():
            conn.execute(SchemaManager.get_schema())
        log.info("applied the job queue schema")


def migrate(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply what is missing; returns the migrations applied now."""
    applied_now = []
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            # one migrator at a time, even when several processes start together
            conn.execute("SELECT pg_advisory_lock(7413001)")
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for migration in discover(directory):
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.path.read_text(encoding="utf-8"))
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                log.info("applied migration %03d_%s", migration.version, migration.name)
                applied_now.append(migration)
            _apply_job_queue_schema(conn)
            conn.execute("SELECT pg_advisory_unlock(7413001)")
    except psycopg.OperationalError as err:
        raise SinkUnavailable(f"cannot reach the database: {err}") from err
    return applied_now
