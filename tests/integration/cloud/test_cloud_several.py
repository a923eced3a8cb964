"""Several clouds on one database: two real workers configured for two cloud names (both
entries point at the lab), each running only its own cloud's jobs; the syncs of one cloud
never erase the other's inventory or alarms."""

from __future__ import annotations

import uuid

import psycopg
import yaml
from fastapi.testclient import TestClient

from api.main import create_app
from cityops.principal import Role
from cloud_control.handlers import Context
from cloud_control.jobs import build_app
from cloud_control.monitor import sync_cloud
from tests.api_kit import bearer
from tests.helpers import free_port, wait_for
from tests.integration.cloud.conftest import LAB_CLOUDS


def _two_clouds(path, b_overrides: dict | None = None) -> None:
    clouds = yaml.safe_load(LAB_CLOUDS.read_text())
    clouds["clouds"]["lab-b"] = {**clouds["clouds"]["cityops-lab"], **(b_overrides or {})}
    path.write_text(yaml.safe_dump(clouds))


def _state(api: TestClient, url: str) -> dict:
    return api.get(url).json()


def test_a_job_runs_only_on_a_worker_of_its_cloud(cloud_settings, tmp_path) -> None:
    from tests.conftest import Processes, settings_env

    path = tmp_path / "clouds.yaml"
    _two_clouds(path)
    a = cloud_settings.model_copy(update={"clouds_yaml": path})
    b = a.model_copy(update={"cloud_name": "lab-b"})
    procs = Processes(tmp_path, settings_env(a))
    procs.start("worker-a", "worker")
    projects = [f"t-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    api_settings = a.model_copy(update={"cloud_names": ["cityops-lab", "lab-b"]})
    try:
        with TestClient(create_app(api_settings)) as api:
            api.headers.update(bearer(api_settings, Role.OPS_ENGINEER, "ops-li"))
            refused = api.post("/v1/cloud/projects", params={"cloud": "nowhere"},
                               json={"name": projects[0]})
            assert refused.status_code == 422 and "nowhere" in refused.json()["detail"]
            for_b = api.post("/v1/cloud/projects", params={"cloud": "lab-b"},
                             json={"name": projects[1]}).json()["url"]
            for_a = api.post("/v1/cloud/projects", json={"name": projects[0]}).json()["url"]
            wait_for(lambda: _state(api, for_a)["state"] == "succeeded", timeout_s=120,
                     what="cloud A's job")
            # worker A took the job queued after B's, and left B's alone
            job_b = _state(api, for_b)
            assert (job_b["state"], job_b["cloud"], job_b["attempts"]) == ("queued", "lab-b", 0)
            procs.start("worker-b", "worker", env=settings_env(b))
            wait_for(lambda: _state(api, for_b)["state"] == "succeeded", timeout_s=120,
                     what="cloud B's job on worker B")
            listed = api.get("/v1/cloud/jobs", params={"cloud": "lab-b"}).json()
            assert [j["id"] for j in listed] == [job_b["id"]]
    finally:
        procs.stop_all()
        provider = Context(settings=cloud_settings, report=lambda *a, **k: None).provider
        for name in projects:
            provider.delete_project(name)


async def test_syncs_of_two_clouds_keep_to_their_own_rows(cloud_settings, tmp_path,
                                                          database_url) -> None:
    path = tmp_path / "clouds.yaml"
    # cloud B's block storage does not answer: a service_down alarm of B's own
    dead = f"http://127.0.0.1:{free_port()}/v3/%(project_id)s"
    _two_clouds(path, {"block_storage_endpoint_override": dead})
    a = cloud_settings.model_copy(update={"clouds_yaml": path})
    b = a.model_copy(update={"cloud_name": "lab-b"})
    await sync_cloud(b)
    await sync_cloud(a)  # healthy: before clouds had names, this cleared B's alarm and rows
    with psycopg.connect(database_url) as conn:
        rows = dict(conn.execute("SELECT cloud, count(*) FROM cloud_resources"
                                 " GROUP BY cloud").fetchall())
        alarms = conn.execute("SELECT cloud, subject FROM cloud_alarms WHERE state = 'active'"
                              " AND kind = 'service_down'").fetchall()
    assert rows["lab-b"] > 0 and rows["cityops-lab"] > 0
    assert ("lab-b", "block-storage") in alarms
    assert not [x for x in alarms if x[0] == "cityops-lab"]
    # each cloud's periodic sync is its own: own id, own lock, own queue
    periodic = build_app(b).periodic_registry.periodic_tasks[("cloud:sync", "sync:lab-b")]
    assert periodic.configure_kwargs["queue"] == "cloud.lab-b"
    assert periodic.configure_kwargs["queueing_lock"] == "cloud-sync:lab-b"
    assert periodic.configure_kwargs["lock"] == "cloud-sync:lab-b", "one sync at a time"
