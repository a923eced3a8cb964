"""One private Patroni cluster (etcd + a primary + a synchronous standby) for the session's HA
tests, on free ports in a folder of its own; the shared local cluster is never touched."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cityops.settings import Settings
from infra.db.migrate import migrate
from infra.ha.cluster import HaCluster, Layout, Member
from infra.ha.database import ensure_database
from tests.conftest import BrokerFixture, Processes, settings_env
from tests.helpers import free_port


@dataclass
class HaFixture:
    cluster: HaCluster
    url: str  # read-write: whichever member is primary
    read_url: str  # prefer-standby: the API's read pool


@pytest.fixture(scope="session")
def ha() -> Iterator[HaFixture]:
    # not under pytest's tmp folder: its parents are root's, 0700, and PostgreSQL runs as postgres
    root = Path(tempfile.mkdtemp(prefix="cityops-ha-"))
    layout = Layout(root, free_port(), free_port(),
                    [Member(f"pg{i}", free_port(), free_port()) for i in range(2)],
                    scope=f"test-{secrets.token_hex(3)}",
                    parameters={"shared_buffers": "128MB", "max_connections": 100},
                    throwaway=True, tls=True)
    cluster = HaCluster(layout, secrets.token_urlsafe(16), secrets.token_urlsafe(16))
    try:
        cluster.start()
        cluster.wait_leader(90)
        password = secrets.token_urlsafe(16)
        url = ensure_database(cluster, "cityops", password, "cityops")
        migrate(url)  # while the standby is being copied
        cluster.wait_synchronous(90)
        yield HaFixture(cluster, url, cluster.url("cityops", password, "cityops",
                                                  "prefer-standby"))
    finally:
        cluster.crash_stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def ha_settings(ha: HaFixture, broker: BrokerFixture, tmp_path: Path) -> Settings:
    """Settings on the HA cluster (not the session's database in the shared cluster)."""
    return Settings(
        _env_file=None, state_dir=tmp_path / "state", database_url=ha.url,
        database_admin_url=ha.url, database_read_url=ha.read_url, mqtt_url=broker.url,
        ingest_mqtt_password=broker.passwords["svc-ingest"],
        api_mqtt_password=broker.passwords["svc-api"], broker_state_dir=broker.broker.state_dir,
        jwt_secret=secrets.token_urlsafe(48), secret_key=secrets.token_urlsafe(48),
        auth_failures_per_address=1_000_000,
    )


@pytest.fixture
def ha_processes(ha_settings: Settings, tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path, settings_env(ha_settings))
    yield procs
    procs.stop_all()
