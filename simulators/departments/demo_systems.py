"""The demo's other department systems besides the MariaDB registry (demo.py): 城管局's 部件
inventory in a PostgreSQL database of its own, the 12345 hotline's HTTP JSON API, 统计局's
monthly XLSX drop folder and the same files over SFTP. Each is started, registered once (system,
source with its secret stored encrypted, an incremental sync every minute) and changed by
`change()` while the demo runs."""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg.types.json import Jsonb

from datafoundation import register
from simulators.departments import components
from simulators.departments.hotline import Hotline, serve
from simulators.departments.statistics import SftpServer, write_month


def ensure(database_url: str, secret_key: str, department: tuple[str, str], slug: str,
           name: str, source: tuple[str, str, dict], secret: str | None, sync: dict) -> None:
    """A system with one source and one sync, registered once; later starts only update the
    source's settings (ports change) and secret."""
    kind_name, kind, settings = source
    credentials = {"password": secret} if secret else None
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO departments (id, name) VALUES (%s, %s) ON CONFLICT DO "
                     "NOTHING", department)
        row = conn.execute("SELECT so.id FROM sources so JOIN systems sy ON sy.id = "
                           "so.system_id WHERE sy.slug = %s", (slug,)).fetchone()
        if row:
            conn.execute("UPDATE sources SET settings = settings || %s::jsonb WHERE id = %s",
                         (Jsonb(settings), row[0]))
            if credentials:
                register.set_credentials(conn, secret_key, row[0], credentials)
            return
        system = register.add_system(conn, slug, name, department[0], vendor="demo")
        source_id = register.add_source(conn, secret_key, system, kind_name, kind, settings,
                                        credentials)
        fields = dict(sync)
        register.add_sync(conn, source_id, fields.pop("object"), fields.pop("target"),
                          "incremental", fields.pop("key"), schedule="* * * * *", **fields)


@dataclass
class Systems:
    components_url: str = ""
    hotline: Hotline | None = None
    servers: list = field(default_factory=list)
    drops: list[Path] = field(default_factory=list)
    month: date = date(2025, 1, 1)
    ticks: int = 0

    def change(self) -> None:
        """Inserts, updates, deletes in the 部件 inventory and the hotline; a new month's file
        in the drop folders every third change."""
        components.mutate(self.components_url)
        if self.hotline:
            self.hotline.mutate()
        self.ticks += 1
        if self.ticks % 3 == 0:
            self.month = _next_month(self.month)
            for drop in self.drops:
                write_month(drop, self.month.strftime("%Y-%m"))

    def stop(self) -> None:
        for server in self.servers:
            if isinstance(server, SftpServer):
                server.stop()
            else:
                server.shutdown()
                server.server_close()


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _components(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (name,)).fetchone()
    if not exists:
        url = components.create_database(admin_url, name)
        components.seed(url, 2000)
        return url
    return f"{admin_url.rpartition('/')[0]}/{name}"


def start(state: Path, database_url: str, admin_url: str, secret_key: str, free_port,
          components_db: str) -> Systems:
    systems = Systems()
    systems.components_url = _components(admin_url, components_db)
    parts = urlsplit(systems.components_url)
    ensure(database_url, secret_key, ("cgj", "城管局"), "cgj_components", "城市部件管理系统",
           ("components-db", "postgresql", {"host": parts.hostname, "port": parts.port,
                                             "database": components_db,
                                             "user": parts.username}),
           parts.password or None, {"object": "components", "target": "components",
                                    "key": ["id"], "cursor_column": "updated_at",
                                    "deletes": "compare"})

    # a new token each start: the source's stored one is replaced below
    systems.hotline = Hotline(secrets.token_urlsafe(16), orders=500)
    systems.hotline.clock = datetime.now()  # changes after a restart are newer than the cursor
    server = serve(systems.hotline, free_port())
    systems.servers.append(server)
    ensure(database_url, secret_key, ("xfj", "信访局"), "rx12345", "12345热线工单系统",
           ("hotline-api", "http_json", {"base_url": f"http://127.0.0.1:"
                                                     f"{server.server_address[1]}"}),
           systems.hotline.token, {"object": "/api/workorders", "target": "workorders",
                                   "key": ["id"], "cursor_column": "updated_at"})

    drop, remote = state / "tjj_drop", state / "tjj_sftp_root"
    key = state / "tjj_sftp_key"
    for folder in (drop, remote):
        folder.mkdir(parents=True, exist_ok=True)
        for month in ("2025-01", "2025-02", "2025-03"):
            if not (folder / f"{month}.xlsx").exists():
                write_month(folder, month)
    systems.drops, systems.month = [drop, remote], date(2025, 3, 1)
    for existing in sorted(drop.glob("*.xlsx")):
        systems.month = max(systems.month, date.fromisoformat(existing.stem + "-01"))
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True)
    sftp = SftpServer(state / "sshd", free_port())
    sftp.start(key.with_suffix(".pub").read_text())
    systems.servers.append(sftp)
    monthly = {"object": "*.xlsx", "target": "monthly", "key": ["record_id"],
               "cursor_column": "_file"}
    ensure(database_url, secret_key, ("tjj", "统计局"), "tjj_files", "统计数据报送（目录）",
           ("file-drop", "file_drop", {"path": str(drop)}), None, monthly)
    ensure(database_url, secret_key, ("tjj", "统计局"), "tjj_sftp", "统计数据报送（SFTP）",
           ("sftp", "sftp", {"host": "127.0.0.1", "port": sftp.port, "user": "root",
                             "path": str(remote), "host_key": sftp.host_key}),
           key.read_text(), monthly)
    return systems
