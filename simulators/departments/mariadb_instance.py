"""A private MariaDB server: its own data folder, socket and loopback port.

Debian's `mariadb-server` provides the binaries; nothing of the machine's own MariaDB (if
any runs) is touched. Runs as root with --user=root, or as the invoking user otherwise."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pymysql

from cityops.errors import StackError


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists()
                                       else None)
        if found:
            return found
    raise StackError(f"none of {', '.join(names)} found: install Debian's mariadb-server")


class MariaDB:
    """One mariadbd process; `url()` gives a pymysql-style address for the app user."""

    def __init__(self, state_dir: Path, port: int, user: str = "registry") -> None:
        self.dir = state_dir.resolve()  # mariadbd reads relative paths from its basedir
        self.port = port
        self.user = user
        self.password_file = state_dir / "app.password"
        self.proc: subprocess.Popen | None = None

    @property
    def socket(self) -> Path:
        return self.dir / "mysqld.sock"

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def _config(self) -> Path:
        cnf = self.dir / "my.cnf"
        run_as = "user = root\n" if os.geteuid() == 0 else ""
        cnf.write_text(
            "[mysqld]\n" + run_as +
            f"datadir = {self.dir / 'data'}\nsocket = {self.socket}\nport = {self.port}\n"
            f"bind-address = 127.0.0.1\npid-file = {self.dir / 'mysqld.pid'}\n"
            f"log-error = {self.dir / 'error.log'}\nskip-name-resolve\n"
            "innodb_buffer_pool_size = 128M\ninnodb_log_file_size = 64M\n"
            "innodb_flush_log_at_trx_commit = 2\ncharacter-set-server = utf8mb4\n"
            f"log-bin = {self.dir / 'binlog'}\nserver-id = 1\nbinlog_format = ROW\n"
            # column names in row events, for binlog capture (datafoundation/cdc.py)
            "binlog_row_metadata = FULL\n"
        )
        return cnf

    def start(self, timeout_s: float = 60.0) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        cnf = self._config()
        fresh = not (self.dir / "data" / "mysql").exists()
        if fresh:
            result = subprocess.run(
                [_binary("mariadb-install-db", "mysql_install_db"), f"--defaults-file={cnf}",
                 "--auth-root-authentication-method=socket", "--skip-test-db"],
                capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise StackError(f"mariadb-install-db failed: {result.stderr[-500:]}")
        log = (self.dir / "mariadbd.out").open("ab")
        self.proc = subprocess.Popen([_binary("mariadbd", "mysqld"), f"--defaults-file={cnf}"],
                                     stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready(timeout_s)
        if fresh:
            self._create_user()

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise StackError(f"mariadbd exited; see {self.dir / 'error.log'}")
            try:
                pymysql.connect(unix_socket=str(self.socket), user="root").close()
                return
            except pymysql.err.OperationalError:
                time.sleep(0.1)  # polling the socket until the server accepts
        raise StackError(f"mariadbd not ready after {timeout_s}s; see {self.dir / 'error.log'}")

    def _create_user(self) -> None:
        password = secrets.token_urlsafe(16)
        self.password_file.write_text(password)
        self.password_file.chmod(0o600)
        with self.root() as conn, conn.cursor() as cur:
            cur.execute("CREATE DATABASE IF NOT EXISTS registry CHARACTER SET utf8mb4")
            cur.execute(f"CREATE USER '{self.user}'@'%%' IDENTIFIED BY %s", (password,))
            cur.execute(f"GRANT ALL ON registry.* TO '{self.user}'@'%%'", ())
            cur.execute("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* "
                        f"TO '{self.user}'@'%%'", ())

    def root(self) -> pymysql.Connection:
        return pymysql.connect(unix_socket=str(self.socket), user="root", autocommit=True,
                               charset="utf8mb4")

    def connect(self, database: str = "registry") -> pymysql.Connection:
        return pymysql.connect(host="127.0.0.1", port=self.port, user=self.user,
                               password=self.password, database=database, autocommit=True,
                               charset="utf8mb4")

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
