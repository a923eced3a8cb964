"""Net-SNMP for the SNMP driver's tests: Debian's real `snmpd` on a free loopback UDP port with a
generated config (a v2c community, a v3 authPriv user made by createUser), its own persistent
directory, never the system's files; and `snmptrap`/`snmpinform` to send notifications."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

V3_USER = "cityops-v3"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Snmpd:
    port: int
    community: str
    auth_key: str
    priv_key: str
    env: dict[str, str]  # for Net-SNMP tools: their own persistent dir, no MIB loading

    def tool(self, *args: str, timeout_s: float = 15.0) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), env=self.env, capture_output=True, text=True,
                              timeout=timeout_s, check=False)


def _answers(snmpd: Snmpd) -> bool:
    done = snmpd.tool("snmpget", "-v2c", "-c", snmpd.community, "-t", "0.3", "-r", "0", "-On",
                      f"127.0.0.1:{snmpd.port}", "1.3.6.1.2.1.1.3.0", timeout_s=5)
    return done.returncode == 0


@contextlib.contextmanager
def running_snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpd]:
    """snmpd for a test module: `with running_snmpd(...) as agent` in a module fixture."""
    root = tmp_path_factory.mktemp("snmpd")
    port = free_udp_port()
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(root / "persist"), "MIBS": "",
           "SNMPCONFPATH": str(root)}
    agent = Snmpd(port, secrets.token_hex(6), secrets.token_hex(8), secrets.token_hex(8), env)
    conf = Path(root / "snmpd.conf")
    conf.write_text(
        f"agentAddress udp:127.0.0.1:{port}\n"
        f"rocommunity {agent.community} 127.0.0.1\n"
        f'createUser {V3_USER} SHA "{agent.auth_key}" AES "{agent.priv_key}"\n'
        f"rouser {V3_USER} priv\n", encoding="utf-8")
    log = open(root / "snmpd.log", "w")  # noqa: SIM115 - closed below
    # -f foreground, -Lo log to stdout, -C only this config, -r no root-only files needed
    proc = subprocess.Popen(["snmpd", "-f", "-Lo", "-C", "-c", str(conf), "-r"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not _answers(agent):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"snmpd did not answer: {(root / 'snmpd.log').read_text()}")
        yield agent
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
