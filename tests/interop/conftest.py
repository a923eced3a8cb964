"""Interoperability tests: the drivers against other vendors' protocol stacks
(docs/interop.md), each peer a real process started by the tests on a free loopback port.

The npm peers (node-opcua, MQTT.js) come from tests/interop/peers, installed from its lock
file by `make test` (`make interop`); nothing is fetched while the tests run.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import port_open, wait_for

PEERS_DIR = Path(__file__).parent / "peers"


class Peer:
    """One peer process; stopped and started again on the same port for the restart tests."""

    def __init__(self, argv: list[str], port: int | None, log: Path, cwd: Path | None = None,
                 ready: str | None = None) -> None:
        self.argv, self.port, self.log, self.cwd, self.ready = argv, port, log, cwd, ready
        self.folder = log.parent  # where the test keeps this peer's files
        self.proc: subprocess.Popen | None = None
        self._log_start = 0

    def start(self) -> Peer:
        self._log_start = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if self.ready is not None:
            wait_for(lambda: self._alive() and self.ready in self.output(), timeout_s=30,
                     what=f"{self.argv[0]} to print {self.ready!r}")
        if self.port is not None:
            wait_for(lambda: self._alive() and port_open(self.port), timeout_s=30,
                     what=f"{self.argv[0]} on port {self.port}")
        return self

    def _alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.argv[0]} exited {self.proc.returncode}: "
                                 f"{self.output()[-2000:]}")
        return True

    def output(self) -> str:
        """What the process printed since its last start."""
        with self.log.open("rb") as f:
            f.seek(self._log_start)
            return f.read().decode(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(scope="session")
def node_peers() -> Path:
    """The npm package set; a clear failure when `make test` has not installed it."""
    stamp = PEERS_DIR / "node_modules" / ".cityops-ci"
    assert stamp.exists(), (f"{PEERS_DIR}/node_modules is not installed from its lock file: "
                            "run `make interop` (part of `make test`)")
    return PEERS_DIR


@pytest.fixture(scope="module")
def peers() -> Iterator[list[Peer]]:
    """Peers a module starts, stopped after it."""
    started: list[Peer] = []
    yield started
    for peer in reversed(started):
        peer.stop()
