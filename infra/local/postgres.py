"""The local stack's PostgreSQL 15 cluster `cityops` on 127.0.0.1:5433 (Debian cluster tools)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cityops.errors import StackError

PG_MAJOR = "15"
CLUSTER = "cityops"
HOST = "127.0.0.1"
PORT = 5433
ROLE = "cityops"
DATABASE = "cityops"
SOCKET_DIR = "/var/run/postgresql"
CONF_DIR = Path(f"/etc/postgresql/{PG_MAJOR}/{CLUSTER}")
DATA_DIR = Path(f"/var/lib/postgresql/{PG_MAJOR}/{CLUSTER}")
SETTINGS_FILE = CONF_DIR / "conf.d" / "cityops.conf"
HBA_FILE = CONF_DIR / "pg_hba.conf"
# the server certificate and key (of the stack's local CA, or the county's own put in their
# place): PostgreSQL wants its key owned by itself and 0600, so a copy lives beside its config
TLS_DIR = CONF_DIR / "tls"
OWNER = "postgres"
# 等保 level 3 (GB/T 22239 8.1.3.1) asks for encryption in transit: over TCP only TLS is
# accepted; the unix socket stays peer-authenticated for the superuser's administration
HBA = """# Written by CityOps (infra/local/postgres.py); edits are overwritten.
local   all             all                                     peer
hostssl all             all             127.0.0.1/32            scram-sha-256
hostssl all             all             ::1/128                 scram-sha-256
local   replication     all                                     peer
hostssl replication     all             127.0.0.1/32            scram-sha-256
hostssl replication     all             ::1/128                 scram-sha-256
"""

# Sized for the 2-core, 24 GiB machine in notes/machine.md; writes are COPY-heavy.
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    # a minute of ingestion at 200,000 readings/s is ~1.5 GB of rows and index entries: with
    # 1 GB the backends began writing out dirty pages themselves and latency climbed within a
    # minute (`make bench-ingest`); Timescale's guidance is about a quarter of RAM
    "shared_buffers": "4GB",
    "effective_cache_size": "12GB",
    "work_mem": "16MB",
    "maintenance_work_mem": "512MB",
    "wal_buffers": "16MB",
    # full-page images after each checkpoint, compressed (lz4 is cheap on CPU); data
    # checksums are on, so setting hint or visibility bits logs whole pages too
    "wal_compression": "lz4",
    "min_wal_size": "1GB",
    # checkpoints by time (every 10 min) rather than by WAL volume: at 150,000 readings/s the
    # WAL grows ~30 MB/s, and with 4 GB a checkpoint began every minute; each one's final
    # fsyncs held commits back (~0.5 s, a latency spike in `make bench-ingest`). Crash
    # recovery replays at most this much WAL.
    "max_wal_size": "16GB",
    "checkpoint_timeout": "10min",
    "bgwriter_delay": "10ms",
    "bgwriter_lru_maxpages": "1000",
    "bgwriter_lru_multiplier": "4",
    "backend_flush_after": "256kB",
    "checkpoint_completion_target": "0.9",
    "random_page_cost": "1.1",
    "synchronous_commit": "on",
    "password_encryption": "scram-sha-256",
    # TimescaleDB's background workers come out of max_worker_processes
    "max_worker_processes": "16",
    "max_parallel_workers": "2",
    "max_parallel_workers_per_gather": "1",
    "shared_preload_libraries": "'timescaledb'",
    "timescaledb.max_background_workers": "8",
    "timescaledb.telemetry_level": "off",
    "ssl": "on",
    "ssl_cert_file": f"'{TLS_DIR / 'server.crt'}'",
    "ssl_key_file": f"'{TLS_DIR / 'server.key'}'",
    "ssl_min_protocol_version": "'TLSv1.2'",
}


@dataclass(frozen=True)
class ClusterState:
    exists: bool
    running: bool
    pid: int | None = None

    def describe(self) -> str:
        if not self.exists:
            return "absent"
        if not self.running:
            return "stopped"
        return f"running on {HOST}:{PORT} (cluster {PG_MAJOR}/{CLUSTER}, pid {self.pid})"


def _run(args: list[str], what: str, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise StackError(f"{what} failed: {err}") from err
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise StackError(f"{what} failed (exit {done.returncode}): {' | '.join(detail)}")
    return done.stdout


def _postmaster_pid() -> int | None:
    """The pid in postmaster.pid if that process is alive; a zombie counts as dead."""
    try:
        pid = int((DATA_DIR / "postmaster.pid").read_text().split("\n", 1)[0])
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ValueError):
        return None
    except PermissionError as err:
        raise StackError(f"cannot tell whether the cluster runs: {err} (run as root)") from err
    state = stat.rsplit(")", 1)[1].split()[0]
    return None if state in ("Z", "X") else pid


def cluster_state() -> ClusterState:
    """Both the pid file and pg_lsclusters must agree that the cluster runs."""
    try:
        listing = json.loads(_run(["pg_lsclusters", "--json"], "pg_lsclusters"))
    except json.JSONDecodeError as err:
        raise StackError(f"pg_lsclusters printed something unexpected: {err}") from err
    ours = [c for c in listing if c["cluster"] == CLUSTER and str(c["version"]) == PG_MAJOR]
    if not ours:
        return ClusterState(exists=False, running=False)
    pid = _postmaster_pid()
    running = bool(ours[0]["running"]) and pid is not None
    return ClusterState(exists=True, running=running, pid=pid if running else None)


def _create_cluster() -> None:
    # `manual`: the system-wide postgresql service must neither start nor stop this cluster
    _run(
        ["pg_createcluster", PG_MAJOR, CLUSTER, "--port", str(PORT), "--start-conf", "manual",
         "--encoding", "UTF8", "--locale", "C.UTF-8",
         "--", "--auth-local=peer", "--auth-host=scram-sha-256", "--data-checksums"],
        "pg_createcluster",
    )


def _write_settings() -> bool:
    """True when the settings changed, so a running cluster needs a restart."""
    text = "# Written by CityOps (infra/local/postgres.py); edits are overwritten.\n" + "".join(
        f"{name} = {value}\n" for name, value in SETTINGS.items()
    )
    if SETTINGS_FILE.exists() and SETTINGS_FILE.read_text() == text:
        return False
    SETTINGS_FILE.parent.mkdir(parents=True, exist_ok=True)
    SETTINGS_FILE.write_text(text)
    return True


def _write_if_changed(path: Path, data: bytes, mode: int) -> bool:
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    shutil.chown(path, OWNER, OWNER)
    return True


def _install_tls(cert: Path, key: Path) -> bool:
    """The server's certificate and key copied where PostgreSQL reads them; True if changed."""
    changed = _write_if_changed(TLS_DIR / "server.crt", cert.read_bytes(), 0o644)
    changed |= _write_if_changed(TLS_DIR / "server.key", key.read_bytes(), 0o600)
    shutil.chown(TLS_DIR, OWNER, OWNER)
    return changed


def _pg_ctl(action: str) -> None:
    _run(["pg_ctlcluster", PG_MAJOR, CLUSTER, action], f"pg_ctlcluster {action} {CLUSTER}")


def _wait_ready(timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    # as postgres, so the probe authenticates by peer instead of logging a failed login
    check = ["runuser", "-u", "postgres", "--", "pg_isready", "-q", "-h", SOCKET_DIR,
             "-p", str(PORT)]
    while time.monotonic() < deadline:
        if subprocess.run(check, check=False).returncode == 0:
            return
        time.sleep(0.1)
    raise StackError(f"PostgreSQL cluster {CLUSTER} not accepting connections after {timeout_s}s")


def ensure_cluster(cert: Path, key: Path) -> ClusterState:
    """Create, configure and start the cluster, whatever state it is in; TCP clients must use
    TLS with this server certificate."""
    state = cluster_state()
    if not state.exists:
        _create_cluster()
    # the certificate before the settings that name it: a start without it fails
    reload = _install_tls(cert, key)
    reload |= _write_if_changed(HBA_FILE, HBA.encode(), 0o640)
    changed = _write_settings()
    if state.running and changed:
        _pg_ctl("restart")
    elif state.running and reload:  # certificates and pg_hba are read again on a reload
        _pg_ctl("reload")
    elif not state.running:
        # a pid file left by a crashed postmaster whose process is gone or a zombie would make
        # the new postmaster refuse to start
        pid_file = DATA_DIR / "postmaster.pid"
        if pid_file.exists() and _postmaster_pid() is None:
            pid_file.unlink()
        _pg_ctl("start")
    _wait_ready()
    return cluster_state()


def stop_cluster() -> None:
    if cluster_state().running:
        _pg_ctl("stop")


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """PostgreSQL's stored SCRAM-SHA-256 form, so the clear password never reaches the server."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


def _psql(database: str, sql: str, what: str) -> None:
    """Run SQL as the postgres superuser over the unix socket (peer authentication)."""
    _run(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
         "-h", SOCKET_DIR, "-p", str(PORT), "-d", database, "-c", "SET client_min_messages=warning",
         "-f", "-"],
        what,
        stdin=sql,
    )


def ensure_database(password: str) -> None:
    """Role `cityops` (CREATEDB, not superuser) with `password`, its database, and TimescaleDB
    in template1 too, so every database the role creates later starts with the extension."""
    # PostGIS is not a trusted extension: the superuser creates it, migrations only check it
    extensions = ("CREATE EXTENSION IF NOT EXISTS timescaledb;\n"
                  "CREATE EXTENSION IF NOT EXISTS postgis;\n")
    _psql("template1", extensions, "timescaledb and postgis in template1")
    role_sql = (
        f"SELECT 'CREATE ROLE {ROLE}' WHERE NOT EXISTS "
        f"(SELECT FROM pg_roles WHERE rolname = '{ROLE}') \\gexec\n"
        f"ALTER ROLE {ROLE} WITH LOGIN CREATEDB NOSUPERUSER NOCREATEROLE "
        f"PASSWORD '{scram_verifier(password)}';\n"
        f"SELECT 'CREATE DATABASE {DATABASE} OWNER {ROLE}' WHERE NOT EXISTS "
        f"(SELECT FROM pg_database WHERE datname = '{DATABASE}') \\gexec\n"
    )
    _psql("postgres", role_sql, f"role and database {ROLE}")
    _psql(DATABASE, extensions, f"timescaledb and postgis in {DATABASE}")
