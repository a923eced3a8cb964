"""The cloud sync against the real OpenStack lab: dead agents as the cloud itself lists them,
one alarm for a Keystone outage, a partial sync when one service does not answer, zero counts
in the inventory history, deleted projects leaving capacity, volumes in error."""

from __future__ import annotations

import subprocess
import uuid

import psycopg
import pytest
import yaml

from cloud_control.handlers import Context
from cloud_control.monitor import sync_cloud
from cloud_control.provider import NetworkSpec, ProjectSpec, ServerSpec, VolumeSpec
from tests.helpers import free_port
from tests.integration.cloud.conftest import LAB_CLOUDS, LAB_STATE


def _lab_sql(sql: str, *args: str) -> None:
    """The lab's own MariaDB, as its administrator (root over the socket)."""
    subprocess.run(["mariadb", f"--defaults-file={LAB_STATE}/etc/my.cnf", "-uroot", "-e",
                    sql % tuple(f"'{a}'" for a in args)], check=True, capture_output=True)


@pytest.fixture
def ghost_agents():
    """A nova-compute and a cinder-volume that stopped reporting an hour ago, on a host of
    their own: OpenStack's os-services lists them down, exactly as it lists a dead agent,
    while the lab's real agents keep serving other tests."""
    host = f"t-ghost-{uuid.uuid4().hex[:6]}"
    ago = "UTC_TIMESTAMP() - INTERVAL 1 HOUR"
    _lab_sql("INSERT INTO nova.services (created_at, updated_at, last_seen_up, host, `binary`,"
             f" topic, report_count, disabled, deleted, forced_down, version, uuid) VALUES ({ago},"
             f" {ago}, {ago}, %s, 'nova-compute', 'compute', 1, 0, 0, 0,"
             " (SELECT max(version) FROM nova.services s), UUID())", host)
    _lab_sql("INSERT INTO cinder.services (created_at, updated_at, deleted, host, `binary`, topic,"
             " report_count, disabled, availability_zone, rpc_current_version,"
             " object_current_version, frozen, uuid) SELECT"
             f" {ago}, {ago}, 0, %s, `binary`, topic, 1, 0, availability_zone,"
             " rpc_current_version, object_current_version, 0, UUID() FROM cinder.services"
             " WHERE `binary` = 'cinder-volume' AND deleted = 0 LIMIT 1", f"{host}@fake")
    try:
        yield host
    finally:
        _lab_sql("DELETE FROM nova.services WHERE host = %s", host)
        _lab_sql("DELETE FROM cinder.services WHERE host = %s", f"{host}@fake")


def _open_alarms(database_url: str, cloud: str) -> dict[tuple[str, str], str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT kind, subject, message FROM cloud_alarms WHERE cloud = %s"
                            " AND state <> 'cleared'", (cloud,)).fetchall()
    return {(k, s): m for k, s, m in rows}


async def test_dead_agents_listed_by_the_cloud_raise_service_down(
        cloud_settings, database_url: str, ghost_agents: str) -> None:
    snap = await sync_cloud(cloud_settings)
    compute, volume = f"compute/nova-compute@{ghost_agents}", \
        f"block-storage/cinder-volume@{ghost_agents}@fake"
    assert snap.services["compute"] == "ok", "the API answers: only the agent is down"
    assert snap.services["compute/nova-compute@cityops-lab"] == "ok"
    alarms = _open_alarms(database_url, "cityops-lab")
    assert "reported down by the cloud" in alarms[("service_down", compute)]
    assert ("service_down", volume) in alarms
    _lab_sql("DELETE FROM nova.services WHERE host = %s", ghost_agents)
    _lab_sql("DELETE FROM cinder.services WHERE host = %s", f"{ghost_agents}@fake")
    await sync_cloud(cloud_settings)
    alarms = _open_alarms(database_url, "cityops-lab")
    assert ("service_down", compute) not in alarms and ("service_down", volume) not in alarms


def _clouds_file(path, name: str, **overrides) -> None:
    """The lab's clouds.yaml with its entry copied under another name, with overrides."""
    clouds = yaml.safe_load(LAB_CLOUDS.read_text())
    clouds["clouds"][name] = {**clouds["clouds"]["cityops-lab"], **overrides}
    path.write_text(yaml.safe_dump(clouds))


async def test_a_keystone_outage_is_one_alarm(cloud_settings, tmp_path, database_url) -> None:
    lab = yaml.safe_load(LAB_CLOUDS.read_text())["clouds"]["cityops-lab"]
    auth = {**lab["auth"], "auth_url": f"http://127.0.0.1:{free_port()}/v3"}
    name, path = f"t-{uuid.uuid4().hex[:6]}", tmp_path / "clouds.yaml"
    _clouds_file(path, name, auth=auth)
    gone = cloud_settings.model_copy(update={"clouds_yaml": path, "cloud_name": name})
    snap = await sync_cloud(gone)
    assert list(snap.services) == ["identity"] and snap.services["identity"].startswith("down")
    assert list(_open_alarms(database_url, name)) == [("service_down", "identity")]
    with psycopg.connect(database_url) as conn:
        parts = dict(conn.execute("SELECT part, ok FROM cloud_sync WHERE cloud = %s",
                                  (name,)).fetchall())
    assert parts and not any(parts.values()), "nothing could be synced: every part says so"


async def test_partial_syncs_zero_counts_deleted_projects_and_volumes_in_error(
        cloud_settings, tmp_path, database_url) -> None:
    """One project's life, synced as two clouds: "part" (its block storage stops answering)
    and the lab itself."""
    from api.queries.cloud import capacity_now, inventory_history

    provider = Context(settings=cloud_settings, report=lambda *a, **k: None).provider
    project = f"t-{uuid.uuid4().hex[:8]}"
    provider.ensure_project(ProjectSpec(name=project, quotas={"cores": 2}))
    try:
        provider.ensure_network(NetworkSpec(project=project, name="net", external_access=False))
        provider.ensure_server(ServerSpec(project=project, name="s1", flavor="m1.tiny",
                                          image="cirros", network="net"))
        volume = provider.ensure_volume(VolumeSpec(project=project, name="v1", size_gb=1))
        provider.conn.block_storage.reset_volume_status(
            volume.id, status="error", attach_status=None, migration_status=None)
        name, path = f"t-{uuid.uuid4().hex[:6]}", tmp_path / "clouds.yaml"
        _clouds_file(path, name)
        part = cloud_settings.model_copy(update={"clouds_yaml": path, "cloud_name": name})
        await sync_cloud(part)  # everything once
        provider.delete_server(project, "s1")  # the project's last server
        # the same cloud, now with its block storage not answering
        dead = f"http://127.0.0.1:{free_port()}/v3/%(project_id)s"
        _clouds_file(path, name, block_storage_endpoint_override=dead)
        snap = await sync_cloud(part)
        assert snap.services["block-storage"].startswith("down")
        assert set(snap.failed) == {"volume"}, snap.failed
        with psycopg.connect(database_url) as conn:
            rows = conn.execute("SELECT kind, name, stale FROM cloud_resources WHERE cloud = %s"
                                " AND project = %s", (name, project)).fetchall()
        assert "s1" not in [n for _, n, _ in rows], "servers were synced: s1 is gone"
        assert ("volume", "v1", True) in rows, "the volume is kept, marked stale"
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            history = await inventory_history(conn, project, "server", 1, name)
        assert [r["count"] for r in history] == [1, 0], "the last server going away is a 0"
        assert [u.metric for u in snap.usages if u.scope == project] == \
            ["cores", "ram", "instances"], "capacity was read without block storage"
        alarms = _open_alarms(database_url, name)
        assert ("service_down", "block-storage") in alarms
        assert ("volume_error", f"{project}/v1") in alarms, "not cleared by a partial sync"

        await sync_cloud(cloud_settings)
        assert _open_alarms(database_url, "cityops-lab")[("volume_error", f"{project}/v1")] \
            == f"volume v1 of project {project} is error"
    finally:
        provider.delete_server(project, "s1")
        provider.delete_volume(project, "v1")
        provider.delete_network(project, "net")
        provider.delete_project(project)
    await sync_cloud(cloud_settings)
    assert ("volume_error", f"{project}/v1") not in _open_alarms(database_url, "cityops-lab")
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        assert not [r for r in await capacity_now(conn, "cityops-lab")
                    if r["scope"] == project], \
            "a deleted project leaves capacity at once"
