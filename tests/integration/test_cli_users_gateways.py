"""`cityops users add` and the CLI's gateway revoke, as real processes on the real database
and broker (issue #13 item 15, issue #22 item 12)."""

from __future__ import annotations

import os
import pty
import secrets
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from api.auth import verify_password
from api.services.users_cli import check_role, check_username, save_user
from cityops.errors import InvalidInput
from cityops.settings import Settings
from infra.broker.accounts import load_accounts
from tests.api_kit import api_settings
from tests.conftest import REPO, BrokerFixture, Processes, settings_env


def _cityops(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO, env=env,
                          input=stdin, capture_output=True, text=True, timeout=60, check=False)


def _user(url: str, name: str) -> tuple | None:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT password_hash, role, department_id FROM users"
                            " WHERE username = %s", (name,)).fetchone()


def test_users_add_reads_a_piped_password_and_takes_a_department(
        processes: Processes, database_url: str) -> None:
    dept, name, password = f"t-dept-{secrets.token_hex(3)}", f"t-u-{secrets.token_hex(3)}", \
        secrets.token_urlsafe(12)
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO departments (id, name) VALUES (%s, '县水利局')", (dept,))
    said = processes.run("users", "add", name, "--role", "department_staff",
                         "--department", dept, stdin=password + "\n")
    assert said.strip() == f"user {name} (department_staff, department {dept}) saved"
    password_hash, role, department = _user(database_url, name)
    assert (role, department) == ("department_staff", dept)
    assert verify_password(password_hash, password) and password not in said


def test_users_add_refuses_bad_fields_by_name_and_never_shows_the_hash(
        processes: Processes, database_url: str) -> None:
    """A bad name printed a traceback quoting the row, password hash included."""
    cases = [
        (["Bad Name", "--role", "viewer"], "NAME 'Bad Name': use 1 to 63 lowercase"),
        (["t-ok-dept", "--role", "viewer", "--department", "nope"],
         "--department 'nope' is not registered"),
    ]
    for args, expected in cases:
        done = _cityops(processes.env, "users", "add", *args, stdin="a-long-password\n")
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert expected in done.stderr, (args, done.stderr)
        output = done.stdout + done.stderr
        assert "Traceback" not in output and "$argon2" not in output, output
        assert "a-long-password" not in output
    assert _user(database_url, "t-ok-dept") is None
    with pytest.raises(InvalidInput, match="--role 'king': use one of admin"):
        check_role("king")
    with pytest.raises(InvalidInput, match="NAME '-x': use"):
        check_username("-x")
    # the database's own refusal (here its check on names) is named, never quoted
    with pytest.raises(InvalidInput, match="users_username_check") as caught:
        save_user(database_url, "Upper", "$argon2id$secret-hash", "viewer", None)
    assert "argon2" not in str(caught.value)


def _read_until(fd: int, wanted: bytes, seen: bytearray, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while wanted not in seen:
        assert time.monotonic() < deadline, f"no {wanted!r} in {bytes(seen)!r}"
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # the child closed the terminal
            break
        seen += chunk


def test_users_add_on_a_terminal_asks_twice_without_echo(processes: Processes,
                                                          database_url: str) -> None:
    name, password = f"t-tty-{secrets.token_hex(3)}", "tty-" + secrets.token_hex(6)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "cli", "users", "add", name, "--role",
                             "viewer"], cwd=REPO, env=processes.env, stdin=follower,
                            stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    seen = bytearray()
    try:
        _read_until(leader, f"Password for {name}: ".encode(), seen)
        os.write(leader, password.encode() + b"\n")
        _read_until(leader, b"Again: ", seen)
        os.write(leader, password.encode() + b"\n")
        _read_until(leader, b"saved", seen)
        assert proc.wait(30) == 0
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
    assert password.encode() not in seen, bytes(seen)  # the terminal did not echo it
    assert verify_password(_user(database_url, name)[0], password)


@pytest.fixture
def onboarding_env(settings: Settings, broker: BrokerFixture, tmp_path: Path) -> dict[str, str]:
    """The CLI's environment, its state dir's broker being the test broker (as the local
    stack's is var/broker)."""
    (tmp_path / "broker").symlink_to(broker.broker.state_dir)
    env = settings_env(api_settings(settings, broker))
    return env | {"CITYOPS_STATE_DIR": str(tmp_path)}


def _registered(database_url: str, broker: BrokerFixture) -> str:
    gateway = f"gw-cli-{secrets.token_hex(3)}"
    broker.add_gateway(gateway)
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO gateways (id, name) VALUES (%s, 'cli test')", (gateway,))
    return gateway


def test_cli_revoke_goes_through_the_registry_like_the_api(
        onboarding_env: dict[str, str], broker: BrokerFixture, database_url: str) -> None:
    first, second = _registered(database_url, broker), _registered(database_url, broker)
    done = _cityops(onboarding_env, "gateways", "revoke", first)
    assert done.returncode == 0, done.stderr
    done = _cityops(onboarding_env, "stack", "revoke-gateway", second)
    assert done.returncode == 0, done.stderr
    assert "registry" in done.stdout
    with psycopg.connect(database_url) as conn:
        revoked = conn.execute("SELECT id FROM gateways WHERE id = ANY(%s) AND revoked_at IS"
                               " NOT NULL", ([first, second],)).fetchall()
        audited = conn.execute("SELECT count(*) FROM audit_log WHERE actor_kind = 'cli' AND"
                               " detail->>'gateway' = ANY(%s)", ([first, second],)).fetchone()
    assert sorted(r[0] for r in revoked) == sorted([first, second])
    assert audited == (2,)
    accounts = load_accounts(broker.broker.state_dir)
    assert accounts[first].revoked and accounts[second].revoked
    again = _cityops(onboarding_env, "gateways", "revoke", first)
    assert again.returncode == 1 and "already revoked" in again.stderr
