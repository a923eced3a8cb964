"""Playbooks against real sshd hosts: their effects on the hosts, failures, and no secrets."""

from __future__ import annotations

import pwd
import subprocess
import uuid
from pathlib import Path

import pytest

from cityops.errors import PlaybookFailed
from cloud_control.playbooks import Host, HostEvent, run_playbook
from tests.helpers import free_port


def test_hardening_writes_ssh_and_time_settings_and_admin_users(ssh_hosts, ssh_client_key):
    [target] = ssh_hosts(1)
    admin = f"ops{uuid.uuid4().hex[:6]}"
    key = ssh_client_key.with_suffix(".pub").read_text().strip()
    events: list[HostEvent] = []
    try:
        result = run_playbook(
            "hardening.yml", [target.host],
            {"hardening_admins": [{"name": admin, "ssh_key": key}],
             "hardening_manage_packages": False, "hardening_ntp_servers": ["ntp.example.cn"]},
            ssh_client_key.read_text(), events.append,
        )
        result.raise_for_failure("hardening.yml")
        sshd = (target.prefix / "etc/ssh/sshd_config.d/50-cityops-hardening.conf").read_text()
        assert "PasswordAuthentication no" in sshd
        assert "PermitRootLogin prohibit-password" in sshd
        sources = (target.prefix / "etc/chrony/sources.d/cityops.sources").read_text()
        assert "server ntp.example.cn iburst" in sources
        _dengbao_baseline(target.prefix)
        home = Path(pwd.getpwnam(admin).pw_dir)
        assert (home / ".ssh/authorized_keys").read_text().strip() == key
        assert oct((home / ".ssh/authorized_keys").stat().st_mode)[-3:] == "600"
        assert any(e.status == "changed" for e in events)
        # a second run changes nothing: the roles are idempotent
        events.clear()
        run_playbook("hardening.yml", [target.host],
                     {"hardening_admins": [{"name": admin, "ssh_key": key}],
                      "hardening_manage_packages": False,
                      "hardening_ntp_servers": ["ntp.example.cn"]},
                     ssh_client_key.read_text(), events.append).raise_for_failure("again")
        assert not [e for e in events if e.status == "changed"]
    finally:
        subprocess.run(["userdel", "-r", admin], capture_output=True, check=False)


def _dengbao_baseline(root: Path) -> None:
    """The 等保 files of hardening.yml (tasks/dengbao.yml): what a host enforces."""
    etc = root / "etc"
    assert "minclass = 3" in (etc / "security/pwquality.conf.d/cityops.conf").read_text()
    assert "remember = 5" in (etc / "security/pwhistory.conf").read_text()
    assert "unlock_time = 1800" in (etc / "security/faillock.conf").read_text()
    assert "PASS_MAX_DAYS\t90" in (etc / "login.defs").read_text()
    assert "TMOUT=900" in (etc / "profile.d/cityops-tmout.sh").read_text()
    assert "-k identity" in (etc / "audit/rules.d/cityops.rules").read_text()
    rules = etc / "nftables.conf"
    assert "policy drop" in rules.read_text() and "tcp dport 443 accept" in rules.read_text()
    # the ruleset as nft itself reads it (-c: checked, not loaded)
    checked = subprocess.run(["/usr/sbin/nft", "-c", "-f", str(rules)], capture_output=True,
                             text=True, check=False)
    assert checked.returncode == 0, checked.stderr


def test_a_failing_host_is_reported_with_its_task_and_message(ssh_hosts, ssh_client_key):
    [good] = ssh_hosts(1)
    dead = Host(name="dead", address="127.0.0.1", port=free_port(), groups=("edge_gateways",))
    good_host = Host(**{**good.host.__dict__, "groups": ("edge_gateways",)})
    result = run_playbook(
        "edge_gateway.yml", [good_host, dead],
        {"gateway_id": "gw-x", "gateway_password": "s3cret-never-logged",
         "edge_agent_config": {}, "cityops_wheelhouse_archive": "/nonexistent/wheels.tar.gz"},
        ssh_client_key.read_text(),
    )
    assert set(result.failed_hosts) == {"dead", good.host.name}
    assert result.failed_hosts["dead"].status == "unreachable"
    assert result.failed_hosts[good.host.name].task == "Wheelhouse"
    assert "nonexistent" in result.failed_hosts[good.host.name].message
    with pytest.raises(PlaybookFailed, match="Wheelhouse"):
        result.raise_for_failure("edge_gateway.yml")
