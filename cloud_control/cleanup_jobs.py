"""Jobs that remove what a department no longer uses: networks, subnets, routers, floating
IPs and empty projects; and server deletion that gives the server's floating IPs back.

Registered next to handlers.HANDLERS by jobs.py (JOB_KINDS); run in a worker thread like
every handler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cityops.wire import Identifier
from cloud_control import handlers
from cloud_control.handlers import Context, ServerRef


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NamedInProject(_Params):
    project: Identifier
    name: Identifier


class FloatingIpRef(_Params):
    project: Identifier
    address: str = Field(pattern=r"^\d{1,3}(\.\d{1,3}){3}$", description="the floating IP")


class ProjectRef(_Params):
    name: Identifier


def server_delete(ctx: Context, p: ServerRef) -> dict:
    """A deleted server's floating IP would stay allocated against the project's quota."""
    ctx.report(f"releasing the floating IPs of server {p.name}", progress=5)
    released = ctx.provider.release_floating_ips(p.project, p.name)
    return {**handlers.server_delete(ctx, p), "released_floating_ips": released}


def _removal(what: str, remove: Callable[[Any, Any], list[str]]) -> Callable[[Context, Any], dict]:
    def handler(ctx: Context, p: Any) -> dict:
        name = getattr(p, "name", None) or getattr(p, "address", "")
        ctx.report(f"deleting {what} {name}", progress=10)
        ids = remove(ctx.provider, p)
        return {"deleted": name, "ids": ids, "existed": bool(ids)}
    return handler


CLEANUP_HANDLERS: dict[str, tuple[type[BaseModel], Callable[[Context, Any], dict]]] = {
    "server.delete": (ServerRef, server_delete),
    "network.delete": (NamedInProject, _removal(
        "network", lambda pr, p: pr.delete_network(p.project, p.name))),
    "subnet.delete": (NamedInProject, _removal(
        "subnet", lambda pr, p: pr.delete_subnet(p.project, p.name))),
    "router.delete": (NamedInProject, _removal(
        "router", lambda pr, p: pr.delete_router(p.project, p.name))),
    "floating_ip.delete": (FloatingIpRef, _removal(
        "floating IP", lambda pr, p: pr.delete_floating_ip(p.project, p.address))),
    "project.delete": (ProjectRef, _removal(
        "project", lambda pr, p: pr.delete_project(p.name))),
}
