"""The only ansible_runner import: run a playbook of playbooks/ against generated hosts.

Secrets stay out of logs and command lines: every variable goes into the run's private
`env/extravars` file (mode 0600, passed to ansible-playbook by path, not by value), the SSH
key goes through ansible-runner's ssh-agent, and the whole private directory is removed when
the run ends. Tasks that handle secrets carry `no_log`, so their events hold no values either.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import ansible_runner
import yaml

from cityops.errors import ConfigError, PlaybookFailed

log = logging.getLogger(__name__)
PLAYBOOKS_DIR = Path(__file__).parents[1] / "playbooks"
_STATUS_OF_EVENT = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}


# the role that installs the platform from the wheelhouse: a playbook needs the wheelhouse
# when one of its roles is this role or declares it among its meta dependencies
RUNTIME_ROLE = "cityops_runtime"


# roles that install the core only (their meta sets cityops_package: cityops): an edge
# gateway runs the agent and its drivers, not the server's libraries
CORE_ROLES = {"edge_gateway"}


def needs_wheelhouse(playbook: str) -> bool:
    """Whether the playbook installs the platform (the wheelhouse is built only then)."""
    return RUNTIME_ROLE in roles_of(playbook)


def wheelhouse_extras(playbook: str) -> tuple[str, ...]:
    """The extras whose wheels the playbook's hosts install: none where every role that
    installs the platform is an edge gateway's, the server extra otherwise."""
    installers = {role for role in roles_of(playbook)
                  if role != RUNTIME_ROLE and RUNTIME_ROLE in _with_dependencies(role)}
    return () if installers <= CORE_ROLES else ("server",)


def roles_of(playbook: str) -> set[str]:
    """Every role a playbook of playbooks/ runs: its plays' roles, imported playbooks', and
    their meta dependencies."""
    path = PLAYBOOKS_DIR / playbook
    if not path.is_file():
        raise PlaybookFailed(f"no playbook {playbook!r} in {PLAYBOOKS_DIR}")
    found: set[str] = set()
    for play in yaml.safe_load(path.read_text()) or []:
        if "import_playbook" in play:
            found |= roles_of(play["import_playbook"])
        for role in play.get("roles", []):
            found |= _with_dependencies(role if isinstance(role, str) else role["role"])
    return found


def _with_dependencies(role: str, seen: frozenset[str] = frozenset()) -> set[str]:
    if role in seen:
        raise ConfigError(f"role {role} depends on itself through {', '.join(sorted(seen))}")
    meta = PLAYBOOKS_DIR / "roles" / role / "meta" / "main.yml"
    deps = (yaml.safe_load(meta.read_text()) or {}).get("dependencies", []) \
        if meta.is_file() else []
    found = {role}
    for dep in deps:
        found |= _with_dependencies(dep if isinstance(dep, str) else dep["role"], seen | {role})
    return found


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    port: int = 22
    user: str = "root"
    groups: tuple[str, ...] = ()
    variables: dict = field(default_factory=dict)


@dataclass(frozen=True)
class HostEvent:
    host: str
    task: str
    status: str  # ok, changed, failed, unreachable, skipped
    message: str = ""


@dataclass
class PlaybookResult:
    status: str
    rc: int
    failed_hosts: dict[str, HostEvent]
    events: int
    # ansible's own last words when it stopped before any host ran (a syntax error...)
    output_tail: str = ""

    def raise_for_failure(self, playbook: str) -> None:
        if self.status != "successful" or self.rc != 0 or self.failed_hosts:
            where = "; ".join(
                f"{h}: {e.task}: {e.message}" for h, e in sorted(self.failed_hosts.items())
            )
            where = where or self.output_tail
            raise PlaybookFailed(
                f"{playbook} {self.status} (rc {self.rc}){': ' + where if where else ''}",
                result=self,
            )


def inventory_of(hosts: list[Host]) -> dict:
    """Ansible's YAML inventory structure for the hosts, grouped as they say."""
    groups: dict[str, dict] = {}
    for host in hosts:
        entry = {
            "ansible_host": host.address, "ansible_port": host.port, "ansible_user": host.user,
            **host.variables,
        }
        for group in host.groups or ("ungrouped",):
            groups.setdefault(group, {"hosts": {}})["hosts"][host.name] = entry
    return {"all": {"children": groups}}


def _host_event(raw: dict) -> HostEvent | None:
    kind = raw.get("event", "")
    if kind not in _STATUS_OF_EVENT:
        return None
    data = raw.get("event_data", {})
    res = data.get("res") or {}
    status = _STATUS_OF_EVENT[kind]
    if status == "ok" and res.get("changed"):
        status = "changed"
    message = ""
    if status in ("failed", "unreachable"):
        message = str(res.get("msg") or res.get("stderr") or res.get("reason") or "")[:500]
    return HostEvent(data.get("host", "?"), data.get("task", "?"), status, message)


def run_playbook(
    playbook: str,
    hosts: list[Host],
    variables: dict,
    ssh_key: str,
    on_event: Callable[[HostEvent], None] | None = None,
    timeout_s: int = 1800,
) -> PlaybookResult:
    """Run synchronously (callers use a worker thread); returns the outcome per host."""
    if not (PLAYBOOKS_DIR / playbook).is_file():
        raise PlaybookFailed(f"no playbook {playbook!r} in {PLAYBOOKS_DIR}")
    private = Path(tempfile.mkdtemp(prefix="cityops-ansible-"))
    failed: dict[str, HostEvent] = {}
    counted = 0

    def handle(raw: dict) -> bool:
        nonlocal counted
        event = _host_event(raw)
        if event is not None:
            counted += 1
            if event.status in ("failed", "unreachable"):
                failed[event.host] = event
            if on_event is not None:
                on_event(event)
        return False  # keep nothing on disk: the database has what matters

    try:
        _write_private(private, hosts, variables)
        runner = ansible_runner.run(
            private_data_dir=str(private),
            project_dir=str(PLAYBOOKS_DIR),
            playbook=playbook,
            inventory=str(private / "inventory" / "hosts.json"),
            ssh_key=ssh_key,
            envvars=_ansible_env(),
            event_handler=handle,
            quiet=True,
            timeout=timeout_s,
        )
        tail = ""
        if runner.rc and not failed:
            tail = runner.stdout.read()[-1500:].strip()
        return PlaybookResult(runner.status, runner.rc or 0, failed, counted, tail)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _ansible_env() -> dict[str, str]:
    # the venv's own ansible-playbook first, whatever PATH the worker was started with
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    # pipelining: a task is one SSH round trip instead of copying a module file then running
    # it (several); it needs no `requiretty` in sudoers, which Debian does not set
    return {"PATH": path, "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_PIPELINING": "True", "ANSIBLE_ROLES_PATH": str(PLAYBOOKS_DIR / "roles")}


def _write_private(private: Path, hosts: list[Host], variables: dict) -> None:
    (private / "env").mkdir(mode=0o700)
    (private / "inventory").mkdir(mode=0o700)
    extravars = private / "env" / "extravars"
    extravars.touch(mode=0o600)
    extravars.write_text(json.dumps(variables))
    (private / "inventory" / "hosts.json").write_text(json.dumps(inventory_of(hosts)))
