"""Test hosts for Ansible: real sshd instances on loopback ports with throwaway keys.

They share this machine's filesystem, so each host gets its own `cityops_prefix` directory
for the files the roles write; processes and sockets are real.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cloud_control.handlers import Context
from cloud_control.playbooks import Host, wheelhouse_extras
from cloud_control.wheelhouse import build_wheelhouse
from tests.helpers import free_port, port_open, wait_for


@dataclass
class SshHost:
    host: Host
    prefix: Path
    proc: subprocess.Popen


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@pytest.fixture(scope="session")
def ssh_client_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sshkey") / "id_ed25519"
    _keygen(path)
    return path


# the wheelhouse cache is kept across test sessions: rebuilt only when its inputs change
WHEELHOUSE_DIR = Path("var/wheelhouse").absolute()


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # the edge gateway's (core only: the provisioning tests provision gateways)
    return build_wheelhouse(WHEELHOUSE_DIR, extras=wheelhouse_extras("edge_gateway.yml"))


@pytest.fixture
def ssh_hosts(tmp_path: Path, ssh_client_key: Path) -> Iterator[list[SshHost]]:
    """Call with the number of hosts wanted: ssh_hosts(2)."""
    started: list[SshHost] = []
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory

    def make(count: int = 1) -> list[SshHost]:
        for n in range(count):
            started.append(_start_sshd(tmp_path / f"host{len(started) + n}", ssh_client_key))
        return started[-count:]

    yield make  # type: ignore[misc]
    for h in started:
        h.proc.terminate()
        h.proc.wait(timeout=10)


def _start_sshd(root: Path, client_key: Path) -> SshHost:
    root.mkdir(parents=True)
    _keygen(root / "host_key")
    (root / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    (root / "authorized_keys").chmod(0o600)
    port = free_port()
    config = root / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root}/host_key\n"
        f"PidFile {root}/sshd.pid\nAuthorizedKeysFile {root}/authorized_keys\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\n"
        "StrictModes no\nSubsystem sftp internal-sftp\n"
    )
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
                            stdout=subprocess.DEVNULL, stderr=(root / "sshd.log").open("w"))
    wait_for(lambda: port_open(port), timeout_s=10, what=f"sshd on {port}")
    prefix = root / "fs"
    prefix.mkdir()
    host = Host(name=root.name, address="127.0.0.1", port=port, user="root",
                variables={"cityops_prefix": str(prefix),
                           "ansible_python_interpreter": "/usr/bin/python3"})
    return SshHost(host, prefix, proc)


LAB_STATE = Path(os.environ.get("CITYOPS_LAB_STATE", "/var/lib/cityops-openstack-lab"))
LAB_CLOUDS = LAB_STATE / "clouds.yaml"


@pytest.fixture(scope="session")
def cloud_settings(settings, ssh_client_key: Path, broker):
    """The session's settings pointed at the OpenStack lab (started by `make test`)."""
    assert LAB_CLOUDS.is_file(), f"the OpenStack lab is not set up: no {LAB_CLOUDS}"
    return settings.model_copy(update={
        "clouds_yaml": LAB_CLOUDS, "cloud_name": "cityops-lab",
        "ansible_ssh_key_file": ssh_client_key, "job_stalled_after_s": 4,
        "broker_state_dir": broker.broker.state_dir, "wheelhouse_dir": WHEELHOUSE_DIR,
    })


@pytest.fixture
def worker(cloud_settings, tmp_path: Path):
    """A real `cityops worker` process; restartable by the test."""
    from tests.conftest import Processes, settings_env

    procs = Processes(tmp_path, settings_env(cloud_settings))
    procs.start("worker", "worker")
    yield procs
    procs.stop_all()


@pytest.fixture
def project(cloud_settings):
    """A department project of this test run; its servers and volumes are removed after."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    yield name
    provider = Context(settings=cloud_settings, report=lambda *a, **k: None).provider
    names = provider.project_names()
    if name not in names.values():
        return  # never made, or the test removed it
    # everything it holds, then the project, so that test projects do not pile up in the lab
    # (every capacity sync reads each project's quotas)
    for kind, remove in (("server", provider.delete_server), ("volume", provider.delete_volume),
                         ("floating_ip", provider.delete_floating_ip),
                         ("network", provider.delete_network),
                         ("router", provider.delete_router)):
        for resource in provider.inventory_part(kind, names):
            if resource.project == name:
                remove(name, resource.name)
    provider.delete_project(name)
