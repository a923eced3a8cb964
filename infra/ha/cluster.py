"""Two Patroni members (a primary and a synchronous standby) and the etcd they elect through.

Patroni, not code of ours, decides who is primary: each member holds or watches a leader key
in etcd with a TTL, and in synchronous mode only a standby listed as synchronous may be
promoted, so a commit the primary acknowledged is on the new primary too. The processes run
as the `postgres` user (PostgreSQL refuses root) from one folder: configs, data, logs, pids.
`cityops stack up --ha` starts one on fixed ports (infra/local/stack.py); the tests start a
private one on free ports.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from cityops.errors import StackError
from infra.tls.ca import LocalCA

PG_BIN = Path("/usr/lib/postgresql/15/bin")
OWNER = "postgres"
HOST = "127.0.0.1"

# Timings for one machine or one LAN: a member checks every second, and a primary whose
# Patroni stopped renewing is replaced after 10 s. A crashed postmaster is failed over at
# once (primary_start_timeout 0) rather than recovered in place, which can take longer.
DCS = {
    "ttl": 10, "loop_wait": 1, "retry_timeout": 4,
    "primary_start_timeout": 0,
    "synchronous_mode": True,
    # 0: the new primary never waits alone for a synchronous standby that is gone: writes go
    # on, unprotected until the old primary has rejoined as the standby
    "synchronous_mode_strict": False,
    "postgresql": {
        "use_pg_rewind": True,
        "use_slots": True,
        "parameters": {
            "shared_preload_libraries": "timescaledb",
            "timescaledb.telemetry_level": "off",
            "max_connections": 200,
            "max_worker_processes": 16,
            "timescaledb.max_background_workers": 8,
            "wal_level": "replica", "hot_standby": "on", "wal_log_hints": "on",
            "max_wal_senders": 10, "max_replication_slots": 10,
            "password_encryption": "scram-sha-256",
        },
    },
}


@dataclass(frozen=True)
class Member:
    name: str
    pg_port: int
    rest_port: int


@dataclass
class Layout:
    root: Path
    etcd_client: int
    etcd_peer: int
    members: list[Member]
    scope: str = "cityops"
    # extra PostgreSQL settings for every member (e.g. shared_buffers of the local stack)
    parameters: dict[str, object] = field(default_factory=dict)
    # initdb without fsync: only for a throwaway cluster (the tests')
    throwaway: bool = False
    # TLS only (hostssl), with a certificate of the local CA in <root>/tls; clients verify it
    tls: bool = False


def _get_json(url: str, timeout_s: float = 2.0) -> object:
    with urllib.request.urlopen(url, timeout=timeout_s) as reply:  # noqa: S310 (loopback)
        return json.loads(reply.read())


class HaCluster:
    def __init__(self, layout: Layout, superuser_password: str, replication_password: str):
        self.layout = layout
        self._passwords = (superuser_password, replication_password)

    # --- configuration -------------------------------------------------------------------
    def _member_config(self, member: Member) -> dict:
        root = self.layout.root
        superuser, replication = self._passwords
        dcs = json.loads(json.dumps(DCS))
        dcs["postgresql"]["parameters"].update(self.layout.parameters)
        host = "hostssl" if self.layout.tls else "host"
        if self.layout.tls:
            dcs["postgresql"]["parameters"].update({
                "ssl": "on", "ssl_cert_file": str(root / "tls" / "server.crt"),
                "ssl_key_file": str(root / "tls" / "server.key")})
        home = root / member.name
        return {
            "scope": self.layout.scope, "namespace": "/cityops/", "name": member.name,
            "log": {"level": "INFO"},
            "restapi": {"listen": f"{HOST}:{member.rest_port}",
                        "connect_address": f"{HOST}:{member.rest_port}"},
            "etcd3": {"hosts": [f"{HOST}:{self.layout.etcd_client}"]},
            "bootstrap": {
                "dcs": dcs,
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums",
                           *(["no-sync"] if self.layout.throwaway else [])],
            },
            "postgresql": {
                "listen": f"{HOST}:{member.pg_port}",
                "connect_address": f"{HOST}:{member.pg_port}",
                "data_dir": str(home / "data"), "bin_dir": str(PG_BIN),
                "pgpass": str(home / "pgpass"),
                # a new standby copies the primary at once instead of after a spread checkpoint
                "basebackup": [{"checkpoint": "fast"}],
                "parameters": {"unix_socket_directories": str(home)},
                "authentication": {
                    "superuser": {"username": "postgres", "password": superuser},
                    "replication": {"username": "replicator", "password": replication},
                    "rewind": {"username": "postgres", "password": superuser},
                },
                "pg_hba": [
                    "local all postgres peer",
                    f"{host} replication replicator {HOST}/32 scram-sha-256",
                    f"{host} all all {HOST}/32 scram-sha-256",
                ],
            },
        }

    def write_config(self) -> None:
        root = self.layout.root
        if self.layout.tls:  # made once; PostgreSQL wants its key owned by itself, 0600
            LocalCA(root / "tls").ensure().server([HOST, "localhost"])
        for member in self.layout.members:
            (root / member.name).mkdir(parents=True, exist_ok=True)
            config = root / f"{member.name}.yml"
            config.write_text(json.dumps(self._member_config(member), indent=1))  # YAML ⊃ JSON
            config.chmod(0o600)
        (root / "etcd").mkdir(exist_ok=True)
        shutil.chown(root, OWNER, OWNER)
        for path in root.rglob("*"):
            if not path.is_relative_to(root / "etcd" / "member"):
                shutil.chown(path, OWNER, OWNER)

    # --- processes -----------------------------------------------------------------------
    def _pid_file(self, name: str) -> Path:
        return self.layout.root / f"{name}.pid"

    def _spawn(self, name: str, args: list[str]) -> None:
        if self.pid(name) is not None:
            return
        log = (self.layout.root / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            args, cwd=self.layout.root, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, user=OWNER, group=OWNER, start_new_session=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.layout.root),
                 "LANG": "C.UTF-8"},
        )
        log.close()
        self._pid_file(name).write_text(str(proc.pid))

    def pid(self, name: str) -> int | None:
        try:
            pid = int(self._pid_file(name).read_text())
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ValueError):
            return None
        return None if state in ("Z", "X") else pid

    def start(self) -> None:
        self.write_config()
        lay = self.layout
        peer = f"http://{HOST}:{lay.etcd_peer}"
        self._spawn("etcd", [
            "etcd", "--name", "etcd0", "--data-dir", str(lay.root / "etcd"),
            "--listen-client-urls", f"http://{HOST}:{lay.etcd_client}",
            "--advertise-client-urls", f"http://{HOST}:{lay.etcd_client}",
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"etcd0={peer}", "--log-level", "warn",
        ])
        self._wait(lambda: _get_json(f"http://{HOST}:{lay.etcd_client}/health"), 20, "etcd")
        for member in lay.members:
            self._spawn(member.name, ["patroni", str(lay.root / f"{member.name}.yml")])

    def stop(self, timeout_s: float = 30.0) -> None:
        """Members first (each stops its PostgreSQL), then etcd."""
        self._stop_groups(timeout_s)

    def crash_stop(self) -> None:
        """kill -9 of everything, for a throwaway cluster (the tests'): a clean stop waits
        for each member's checkpoint and for the standby to receive the last WAL."""
        for member in self.layout.members:
            with suppress(FileNotFoundError, ValueError, ProcessLookupError):
                # the postmaster runs in a session of its own
                os.kill(self.postmaster_pid(member.name), signal.SIGKILL)
        for name in [m.name for m in self.layout.members] + ["etcd"]:
            pid = self.pid(name)
            if pid is not None:
                os.killpg(pid, signal.SIGKILL)
                with suppress(ChildProcessError):
                    os.waitpid(pid, 0)  # our child when the tests started it

    def _stop_groups(self, timeout_s: float) -> None:
        for names in ([m.name for m in self.layout.members], ["etcd"]):
            pids = [p for p in (self.pid(n) for n in names) if p is not None]
            for pid in pids:
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while any(self.pid(n) for n in names) and time.monotonic() < deadline:
                self._reap()
                time.sleep(0.1)
            for name in names:
                pid = self.pid(name)
                if pid is not None:
                    os.killpg(pid, signal.SIGKILL)
        self._reap()

    @staticmethod
    def _reap() -> None:
        """Children of this process (the tests' members) would linger as zombies."""
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass

    @staticmethod
    def _wait(check, timeout_s: float, what: str):
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                found = check()
                if found:
                    return found
            except (OSError, ValueError, StackError) as err:
                last = err
            time.sleep(0.1)
        raise StackError(f"{what} not ready after {timeout_s:.0f} s (last error: {last})")

    # --- state ---------------------------------------------------------------------------
    def members(self) -> list[dict]:
        """Patroni's view of the cluster, from the first member that answers."""
        last: Exception | None = None
        for member in self.layout.members:
            try:
                return _get_json(f"http://{HOST}:{member.rest_port}/cluster")["members"]
            except (OSError, ValueError, KeyError) as err:
                last = err
        raise StackError(f"no Patroni member answers: {last}")

    def leader(self) -> dict | None:
        return next((m for m in self.members()
                     if m["role"] == "leader" and m["state"] == "running"), None)

    def synchronous(self) -> bool:
        """A running leader and a synchronous standby streaming from it."""
        roles = {m["role"] for m in self.members() if m["state"] in ("running", "streaming")}
        return {"leader", "sync_standby"} <= roles

    def wait_leader(self, timeout_s: float = 60.0) -> dict:
        return self._wait(self.leader, timeout_s, "a primary")

    def wait_synchronous(self, timeout_s: float = 60.0) -> dict:
        self._wait(self.synchronous, timeout_s, "a primary with a synchronous standby")
        return self.leader()

    def postmaster_pid(self, member_name: str) -> int:
        data = self.layout.root / member_name / "data" / "postmaster.pid"
        return int(data.read_text().split("\n", 1)[0])

    def kill_postgres(self, member_name: str) -> int:
        """kill -9 of a member's postmaster, as a crash would; its Patroni stays up."""
        pid = self.postmaster_pid(member_name)
        os.kill(pid, signal.SIGKILL)
        return pid

    def url(self, user: str, password: str, database: str,
            attrs: str = "read-write") -> str:
        """A libpq multi-host URL: the client tries each member and keeps the one that
        matches `target_session_attrs` (the primary for read-write)."""
        hosts = ",".join(f"{HOST}:{m.pg_port}" for m in self.layout.members)
        tls = (f"&sslmode=verify-full&sslrootcert={self.layout.root / 'tls' / 'ca.crt'}"
               if self.layout.tls else "")
        return (f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{hosts}/"
                f"{database}?target_session_attrs={attrs}&connect_timeout=3{tls}")

    def superuser_url(self, database: str = "postgres") -> str:
        return self.url("postgres", self._passwords[0], database)
