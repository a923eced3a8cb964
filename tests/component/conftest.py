"""Component fixtures: a plain field broker (anonymous Mosquitto on a free port), standing in
for the broker that MQTT sensors in the field publish to."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, port_open, wait_for


class FieldBroker:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.conf = directory / "field.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "persistence false"]
        if os.geteuid() == 0:
            lines.append("user root")
        self.conf.write_text("\n".join(lines) + "\n")
        self.log = directory / "field.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(["/usr/sbin/mosquitto", "-c", str(self.conf)],
                                         stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        wait_for(lambda: port_open(self.port), what="field broker")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def field_broker(tmp_path: Path) -> Iterator[FieldBroker]:
    broker = FieldBroker(tmp_path)
    broker.start()
    yield broker
    broker.stop()
