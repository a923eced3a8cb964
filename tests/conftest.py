"""Shared fixtures: a database of our own in the local cluster, a broker of our own on a free
port, and settings pointing at both, so parallel runs and the demo never collide."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cityops.settings import Settings, load_settings
from infra.broker.accounts import add_gateway, ensure_service_account
from infra.broker.process import Broker
from infra.db.admin import drop_database
from infra.db.migrate import migrate
from tests.helpers import free_port

REPO = Path(__file__).parents[1]


# Suites whose tests share one expensive fixture of wider scope than a module (the console's
# browser and processes, the one OpenStack lab, the Patroni cluster, the interop peers) run on
# one pytest-xdist worker each; every other module stays on one worker too, so its module
# fixtures start once. `make test` runs two workers.
SHARED_SUITES = ("tests/e2e", "tests/integration/cloud", "tests/integration/ha", "tests/interop",
                 "tests/pglite_timescale")


def suite_of(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    return next((s for s in SHARED_SUITES if path.startswith(s + "/")), path)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    # xdist's own `loadgroup` does nothing under pytest 9 (it renames items through an
    # attribute pytest 9 no longer reads): schedule by suite here instead
    from xdist.scheduler import LoadScopeScheduling

    class SuiteScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return suite_of(nodeid)

    return SuiteScheduling(config, log)


@pytest.fixture(scope="session")
def stack_settings() -> Settings:
    """The local stack's settings (var/local.env, written by `cityops stack up`)."""
    return load_settings()


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def database_url(stack_settings: Settings) -> Iterator[str]:
    admin = stack_settings.database_admin_url.get_secret_value()
    name = f"cityops_test_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(stack_settings.database_url.get_secret_value(), name)
    migrate(url)
    yield url
    drop_database(admin, name)


class BrokerFixture:
    def __init__(self, broker: Broker, passwords: dict[str, str]) -> None:
        self.broker = broker
        self.passwords = passwords

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.broker.port}"

    def add_gateway(self, gateway: str) -> str:
        password = add_gateway(self.broker.state_dir, gateway)
        self.broker.write_config()
        self.broker.reload()
        return password


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerFixture]:
    state = tmp_path_factory.mktemp("broker")
    passwords = {name: secrets.token_urlsafe(16) for name in ("svc-ingest", "svc-api")}
    for name, password in passwords.items():
        ensure_service_account(state, name, password)
    instance = Broker(state, free_port())
    instance.write_config()
    instance.start()
    yield BrokerFixture(instance, passwords)
    instance.stop()


@pytest.fixture(scope="session")
def settings(database_url: str, broker: BrokerFixture, tmp_path_factory) -> Settings:
    return Settings(
        _env_file=None,
        state_dir=tmp_path_factory.mktemp("state"),
        database_url=database_url,
        database_admin_url=database_url,
        mqtt_url=broker.url,
        ingest_mqtt_password=broker.passwords["svc-ingest"],
        api_mqtt_password=broker.passwords["svc-api"],
        jwt_secret=secrets.token_urlsafe(48),
        # stored credentials of 数据汇聚 sources are encrypted with it (datafoundation/secrets.py)
        secret_key=secrets.token_urlsafe(32),
        # one API process per `cityops api` (the default is one per core): each extra one
        # costs its start-up on the suite's shared cores; tests of several processes set it
        api_workers=1,
        # every test calls from 127.0.0.1 into one database: the per-address throttle would
        # add up the whole session's deliberate failures (tests of the throttle set their own)
        auth_failures_per_address=1_000_000,
        # people log in with a password only (the second factor's own tests require it)
        totp_required_roles=[],
        # the suite's people have simple passwords (the password rules' own tests use the
        # defaults)
        password_min_length=8, password_min_classes=1,
        # the suite's workers wait for ingestion while they load both cores themselves: a
        # worker below them would only stretch those waits (test_ingest_priority sets its own)
        ingest_nice=0,
        # a test process starts many apps: freezing each one's start-up would keep whatever
        # earlier tests left for the collector (the API's own processes freeze: the default)
        api_gc_freeze=False,
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYOPS_")}
    env["CITYOPS_ENV_FILE"] = "/nonexistent"
    for field, value in settings.model_dump().items():
        if value is None:
            continue  # unset: str(None) would read back as the text "None"
        raw = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        if isinstance(raw, list | dict):  # pydantic-settings reads these as JSON
            raw = json.dumps(raw, default=str)
        env[f"CITYOPS_{field.upper()}"] = str(raw)
    return env


class Processes:
    """Real platform processes started by a test, stopped (and their logs kept) after it."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir, self.env = log_dir, env
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = (self.log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", *args], cwd=REPO, env=env or self.env,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        self.procs.append((name, proc))
        return proc

    def run(self, *args: str, stdin: str = "") -> str:
        result = subprocess.run(
            [sys.executable, "-m", "cli", *args], cwd=REPO, env=self.env, input=stdin,
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert result.returncode == 0, f"cityops {' '.join(args)}: {result.stderr}"
        return result.stdout

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for _name, proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def processes(settings: Settings, tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path, settings_env(settings))
    yield procs
    procs.stop_all()
