"""The platform's role and database on the HA cluster's primary, as `stack up` makes them on
the single cluster (TimescaleDB and PostGIS created by the superuser; the standby gets
everything through replication)."""

from __future__ import annotations

import psycopg
from psycopg import sql

from cityops.errors import StackError
from infra.ha.cluster import HaCluster
from infra.local.postgres import scram_verifier

EXTENSIONS = ("timescaledb", "postgis")


def ensure_database(cluster: HaCluster, role: str, password: str, database: str) -> str:
    """Create or update the role (CREATEDB, no superuser) and its database; returns the
    platform's multi-host URL."""
    try:
        with psycopg.connect(cluster.superuser_url(), autocommit=True) as conn:
            _extensions(cluster, "template1")
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(sql.SQL(verb + " ROLE {} WITH LOGIN CREATEDB NOSUPERUSER NOCREATEROLE"
                                 " PASSWORD {}").format(sql.Identifier(role),
                                                       sql.Literal(scram_verifier(password))))
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                (database,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(database), sql.Identifier(role)))
        _extensions(cluster, database)
    except psycopg.Error as err:
        raise StackError(f"setting up database {database} on the HA cluster failed: {err}") from err
    return cluster.url(role, password, database)


def _extensions(cluster: HaCluster, database: str) -> None:
    with psycopg.connect(cluster.superuser_url(database), autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        for name in EXTENSIONS:
            conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(name)))
