"""/v1/cloud: ops engineers provision department projects, networks, servers and volumes,
run playbooks, and watch capacity. Every change is a job: 202 at once, progress on the job."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from api.deps import Caller, Conn, allow, audit_detail
from api.queries import cloud as q
from cityops.principal import Role
from cityops.settings import Settings
from cityops.wire import ID_PATTERN
from cloud_control import jobs
from cloud_control.cleanup_jobs import FloatingIpRef, NamedInProject, ProjectRef
from cloud_control.handlers import (
    PlaybookRun,
    ProvisionAndConfigure,
    ServerAction,
    ServerRef,
    VolumeAttachment,
    VolumeRef,
)
from cloud_control.provider import NetworkSpec, ProjectSpec, ServerSpec, VolumeSpec

router = APIRouter(tags=["cloud"], dependencies=[allow(Role.OPS_ENGINEER)])
Name = Annotated[str, Path(pattern=ID_PATTERN)]
ACCEPTED = {202: {"description": "the job is queued; follow it at /v1/cloud/jobs/{id}"}}
# which of the deployment's clouds (CITYOPS_CLOUD_NAMES); default the API's CITYOPS_CLOUD_NAME
CloudName = Annotated[str | None, Query(max_length=200, description="the cloud to act on")]
CloudFilter = Annotated[str | None, Query(max_length=200, description="only this cloud's rows")]
IdempotencyKey = Annotated[str | None, Header(
    description="the same key again from the same person (a double click, a retry after a "
                "lost answer) returns the first job instead of queueing a second; the key "
                "used for another request is 409")]


class JobAccepted(BaseModel):
    job: str
    state: str = "queued"
    url: str


async def _submit(request: Request, conn: Conn, caller: Caller, kind: str,
                  params: dict[str, Any], cloud: str | None, key: str | None = None
                  ) -> JobAccepted:
    settings: Settings = request.app.state.settings
    chosen = jobs.check_cloud(settings, cloud)
    app = jobs.build_app(settings)
    async with app.open_async():
        job_id = await jobs.submit(app, conn, kind, params, caller.name, chosen, key)
    audit_detail(request, job=job_id, kind=kind, cloud=chosen)
    return JobAccepted(job=job_id, url=f"/v1/cloud/jobs/{job_id}")


def _job_route(path: str, kind: str, model: type[BaseModel], method: str = "post") -> None:
    """One route per job kind: parse the body, queue the job, answer 202."""

    async def handler(request, conn, caller, body, cloud=None, idempotency_key=None):
        return await _submit(request, conn, caller, kind, body.model_dump(mode="json"), cloud,
                             idempotency_key)

    # real objects, not strings: FastAPI cannot resolve `model` from this module's globals
    handler.__annotations__ = {"request": Request, "conn": Conn, "caller": Caller,
                               "body": Annotated[model, Body()], "cloud": CloudName,
                               "idempotency_key": IdempotencyKey, "return": JobAccepted}
    handler.__name__ = kind.replace(".", "_")
    getattr(router, method)(path, status_code=202, response_model=JobAccepted,
                            responses=ACCEPTED, summary=f"Queue a {kind} job")(handler)


_job_route("/v1/cloud/projects", "project.ensure", ProjectSpec)
_job_route("/v1/cloud/networks", "network.ensure", NetworkSpec)
_job_route("/v1/cloud/servers", "server.ensure", ServerSpec)
_job_route("/v1/cloud/server-actions", "server.action", ServerAction)
_job_route("/v1/cloud/server-deletions", "server.delete", ServerRef)
_job_route("/v1/cloud/volumes", "volume.ensure", VolumeSpec)
_job_route("/v1/cloud/volume-attachments", "volume.attach", VolumeAttachment)
_job_route("/v1/cloud/volume-detachments", "volume.detach", VolumeAttachment)
_job_route("/v1/cloud/volume-deletions", "volume.delete", VolumeRef)
_job_route("/v1/cloud/floating-ips", "floating_ip.ensure", ServerRef)
_job_route("/v1/cloud/playbook-runs", "playbook.run", PlaybookRun)
_job_route("/v1/cloud/provisionings", "server.provision_and_configure", ProvisionAndConfigure)
# removals of leftovers (cloud_control/cleanup_jobs.py)
_job_route("/v1/cloud/network-deletions", "network.delete", NamedInProject)
_job_route("/v1/cloud/subnet-deletions", "subnet.delete", NamedInProject)
_job_route("/v1/cloud/router-deletions", "router.delete", NamedInProject)
_job_route("/v1/cloud/floating-ip-deletions", "floating_ip.delete", FloatingIpRef)
_job_route("/v1/cloud/project-deletions", "project.delete", ProjectRef)


def _provider(request: Request, cloud: str | None):
    from cloud_control.handlers import Context

    settings: Settings = request.app.state.settings
    chosen = jobs.check_cloud(settings, cloud)
    return Context(settings=settings.model_copy(update={"cloud_name": chosen}),
                   report=lambda *a, **k: None).provider


@router.get("/v1/cloud/flavors", response_model=list[dict])
async def flavors(request: Request, cloud: CloudName = None) -> list[dict]:
    return await asyncio.to_thread(lambda: _provider(request, cloud).flavors())


@router.get("/v1/cloud/images", response_model=list[dict])
async def images(request: Request, cloud: CloudName = None) -> list[dict]:
    return await asyncio.to_thread(lambda: _provider(request, cloud).images())


@router.get("/v1/cloud/clouds", response_model=list[dict])
async def clouds(request: Request, conn: Conn) -> list[dict]:
    """The clouds this API queues jobs for, and how each one's last sync went, part by part
    (a part that could not be listed keeps its last rows, marked stale)."""
    return await q.clouds(conn, jobs.offered_clouds(request.app.state.settings))


@router.get("/v1/cloud/jobs", response_model=list[dict])
async def list_jobs(conn: Conn, state: str | None = None, kind: str | None = None,
                    limit: int = 50, cloud: CloudFilter = None) -> list[dict]:
    return await q.jobs(conn, state, kind, min(max(limit, 1), 500), cloud)


JobId = Annotated[uuid.UUID, Path(description="the id a POST answered")]


@router.get("/v1/cloud/jobs/{job}", response_model=dict)
async def get_job(job: JobId, conn: Conn) -> dict:
    return await q.job_with_events(conn, str(job))


@router.get("/v1/cloud/jobs/{job}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "job events as they happen, then `end`"}})
async def job_events(job: JobId, conn: Conn, request: Request) -> StreamingResponse:
    await q.job_with_events(conn, str(job))  # 404 before the stream starts
    return StreamingResponse(q.stream_job_events(request, str(job)),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


@router.get("/v1/cloud/inventory", response_model=list[dict])
async def inventory(conn: Conn, project: str | None = None,
                    kind: Literal["project", "server", "volume", "network", "subnet", "router",
                                  "floating_ip"] | None = None,
                    cloud: CloudFilter = None) -> list[dict]:
    return await q.inventory(conn, project, kind, cloud)


@router.get("/v1/cloud/capacity", response_model=list[dict])
async def capacity(conn: Conn, cloud: CloudFilter = None) -> list[dict]:
    return await q.capacity_now(conn, cloud)


@router.get("/v1/cloud/capacity/history", response_model=list[dict])
async def capacity_history(conn: Conn, scope: str, metric: str, hours: int = 24,
                           cloud: CloudFilter = None) -> list[dict]:
    return await q.capacity_history(conn, scope, metric, min(max(hours, 1), 24 * 90), cloud)


@router.get("/v1/cloud/inventory/history", response_model=list[dict])
async def inventory_history(conn: Conn, project: str, kind: str = "server",
                            hours: int = 24, cloud: CloudFilter = None) -> list[dict]:
    return await q.inventory_history(conn, project, kind, min(max(hours, 1), 24 * 90), cloud)


@router.get("/v1/cloud/alarms", response_model=list[dict])
async def cloud_alarms(conn: Conn, state: Literal["open", "all"] = "open",
                       cloud: CloudFilter = None) -> list[dict]:
    return await q.alarms(conn, state == "open", cloud)


@router.post("/v1/cloud/alarms/{alarm}/acknowledge", response_model=dict)
async def acknowledge(alarm: Annotated[int, Path(ge=1, le=2**63 - 1)], conn: Conn,
                      caller: Caller) -> dict:
    return await q.acknowledge(conn, alarm, caller.name)
