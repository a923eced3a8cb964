"""Cloud jobs run in the test process: recorded in `jobs` as the API records them, then run
by the worker's own `execute` (no queue, no worker process: these tests are about what a job
does to the cloud, and the lab is slow enough as it is). Also a project of the test module's
own, its network, and the partial states a killed worker leaves, made with the SDK."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
from psycopg.rows import dict_row

from cloud_control.handlers import Context
from cloud_control.jobs import execute


@dataclass
class Lab:
    settings: object = field(repr=False)
    database_url: str = field(repr=False)  # holds the password
    project: str

    @property
    def provider(self):
        return Context(settings=self.settings, report=lambda *a, **k: None).provider

    def sdk(self, provider=None):
        """The openstacksdk connection scoped to the project: to make what a killed worker
        would have left behind."""
        return (provider or self.provider)._in(self.project)

    def submit(self, kind: str, params: dict) -> str:
        with psycopg.connect(self.database_url) as conn:
            return str(conn.execute(
                "INSERT INTO jobs (kind, params, requested_by) VALUES (%s, %s, 'ops-test')"
                " RETURNING id", (kind, json.dumps(params))).fetchone()[0])

    def outcome(self, job_id: str) -> dict:
        with psycopg.connect(self.database_url, row_factory=dict_row) as conn:
            job = conn.execute("SELECT * FROM jobs WHERE id = %s", (job_id,)).fetchone()
            job["events"] = [r["message"] for r in conn.execute(
                "SELECT message FROM job_events WHERE job_id = %s ORDER BY id", (job_id,))]
        return job

    def run(self, kind: str, **params) -> dict:
        job_id = self.submit(kind, {"project": self.project, **params}
                             if kind != "project.ensure" else params)
        asyncio.run(execute(self.settings, job_id))
        return self.outcome(job_id)

    def ok(self, kind: str, **params) -> dict:
        job = self.run(kind, **params)
        assert job["state"] == "succeeded", job["detail"]
        return job["result"]

    def run_together(self, kind: str, params: list[dict]) -> list[dict]:
        ids = [self.submit(kind, {"project": self.project, **p}) for p in params]

        async def both() -> None:
            await asyncio.gather(*(execute(self.settings, i) for i in ids))

        asyncio.run(both())
        return [self.outcome(i) for i in ids]


@pytest.fixture(scope="package")
def lab(cloud_settings, database_url: str) -> Iterator[Lab]:
    """One project for the package (room for a few small servers), its routed network `net`
    and servers `a` and `b` (tests leave them ACTIVE); everything in it, and the project
    itself, is removed after (a router left behind holds an address of the lab's small
    external range)."""
    here = Lab(cloud_settings, database_url, f"t-{uuid.uuid4().hex[:8]}")
    here.ok("project.ensure", name=here.project, department="water",
            quotas={"cores": 8, "instances": 8, "volumes": 6, "gigabytes": 20})
    here.ok("network.ensure", name="net", cidr="10.20.0.0/24")
    made = here.run_together("server.ensure", [
        {"name": n, "flavor": "m1.tiny", "image": "cirros", "network": "net"} for n in "ab"])
    assert [j["state"] for j in made] == ["succeeded"] * 2, [j["detail"] for j in made]
    yield here
    provider = here.provider
    pc = here.sdk(provider)
    _delete_all(list(pc.compute.servers()), pc.compute.delete_server,
                pc.compute.wait_for_delete)
    _delete_all(list(pc.block_storage.volumes()), pc.block_storage.delete_volume,
                pc.block_storage.wait_for_delete)
    _remove_networks(pc)
    provider.conn.identity.delete_project(provider.conn.identity.find_project(here.project))


def _delete_all(found: list, delete, wait) -> None:
    for item in found:
        delete(item)
    for item in found:
        wait(item, interval=0.5, wait=120)


def _remove_networks(pc) -> None:
    mine = {"project_id": pc.current_project_id}
    for ip in pc.network.ips(**mine):
        pc.network.delete_ip(ip)
    for router in pc.network.routers(**mine):
        for port in pc.network.ports(device_id=router.id,
                                     device_owner="network:router_interface"):
            pc.network.remove_interface_from_router(router, port_id=port.id)
        pc.network.delete_router(router)
    for net in pc.network.networks(**mine):
        pc.network.delete_network(net)
