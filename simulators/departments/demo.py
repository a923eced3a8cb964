"""`cityops sim departments`: the department systems for the demo, registered in the platform
and changing over time, so incremental syncs have something to do.

The 市场监管局 enterprise registry (MariaDB, 5,000 firms, dirty rows included), and the systems
of demo_systems.py: 城管局 部件 (PostgreSQL), the 12345 hotline (HTTP JSON), 统计局 monthly XLSX
(a folder and SFTP). Their data is kept under the state dir; each system, source (secret
stored encrypted) and an incremental sync every minute are registered once."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import typer

from cityops.settings import load_settings

if TYPE_CHECKING:
    from simulators.departments.mariadb_instance import MariaDB


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _register(database_url: str, secret_key: str, maria: MariaDB) -> None:
    """The registry's system, source and sync, once; the source follows the port."""
    from datafoundation import register

    settings = {"host": "127.0.0.1", "port": maria.port, "database": "registry",
                "user": maria.user}
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO departments (id, name) VALUES ('scjgj', '市场监管局') "
                     "ON CONFLICT DO NOTHING")
        row = conn.execute("SELECT so.id FROM sources so JOIN systems sy ON sy.id = "
                           "so.system_id WHERE sy.slug = 'scjg_qydj'").fetchone()
        if row:
            conn.execute("UPDATE sources SET settings = settings || %s::jsonb WHERE id = %s",
                         (f'{{"port": {maria.port}}}', row[0]))
            register.set_credentials(conn, secret_key, row[0], {"password": maria.password})
            return
        system = register.add_system(conn, "scjg_qydj", "企业登记系统", "scjgj",
                                     purpose="市场主体登记", vendor="demo", dengbao_level=2,
                                     database_kind="mariadb")
        source = register.add_source(conn, secret_key, system, "registry-db", "mariadb",
                                     settings, {"password": maria.password})
        register.add_sync(conn, source, "firms", "firms", "incremental", ["id"],
                          cursor_column="updated_at", deletes="compare",
                          schedule="* * * * *")


def sim_departments(
    mutate_every_s: float = typer.Option(20.0, min=1.0, help="seconds between changes"),
    firms: int = typer.Option(5000, min=10),
    components_db: str = typer.Option("cityops_dept_cgj", help="城管局 部件's own database "
                                      "(made in the platform's cluster if missing)"),
) -> None:
    """Start the department systems, register them, and change them until stopped."""
    # imported here, not at the top: `cityops` registers this command at every start, and
    # these pull in openpyxl, pymysql and the simulators (seconds on a busy machine)
    from simulators.departments import demo_systems, enterprise_registry
    from simulators.departments.mariadb_instance import MariaDB

    settings = load_settings()
    maria = MariaDB(Path(settings.state_dir).absolute() / "departments" / "mariadb",
                    _free_port())
    maria.start()
    stop, others = threading.Event(), None
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        conn = maria.connect()
        with conn.cursor() as cur:
            cur.execute(enterprise_registry.TABLE.format(table="firms"))
            cur.execute("SELECT COUNT(*) FROM firms")
            if cur.fetchone()[0] == 0:
                enterprise_registry.seed(conn, firms)
        _register(settings.database_url.get_secret_value(),
                  settings.secret_key.get_secret_value(), maria)
        typer.echo(f"enterprise registry (MariaDB) on 127.0.0.1:{maria.port}", err=True)
        others = demo_systems.start(
            Path(settings.state_dir).absolute() / "departments",
            settings.database_url.get_secret_value(),
            settings.database_admin_url.get_secret_value(),
            settings.secret_key.get_secret_value(), _free_port, components_db)
        typer.echo("城管局 部件 (PostgreSQL), 12345 hotline (HTTP), 统计局 XLSX (folder, SFTP) "
                   "started and registered", err=True)
        while not stop.wait(mutate_every_s):
            enterprise_registry.mutate(conn)
            others.change()
    finally:
        if others is not None:
            others.stop()
        maria.stop()
