"""Servers on a project-scoped openstacksdk connection, for openstack_provider.py.

No openstack import here (openstack_provider.py stays the only one, and translates the SDK's
errors around these calls). Every operation reads what the cloud has first and converges from
whatever state an earlier, interrupted attempt left: a worker killed mid-resize leaves the
server in VERIFY_RESIZE, a failed create leaves an ERROR server, two racing creates leave
two servers with one name. Results are the cloud's answer, never the request echoed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cityops.errors import Conflict, NotFound, ProviderError

# statuses in which a server stays until someone acts; anything else is on its way somewhere
SETTLED = ("ACTIVE", "SHUTOFF", "VERIFY_RESIZE", "ERROR", "PAUSED", "SUSPENDED", "SHELVED",
           "SHELVED_OFFLOADED", "RESCUE")


def oldest_first(items) -> list:
    """Duplicates by name are ordered the same way on every call, so CityOps always manages
    the same one of them (the oldest) and reports the others."""
    # flavors carry no created_at: they are then ordered by id alone
    return sorted(items, key=lambda r: (getattr(r, "created_at", None) or "", r.id))


def named(pc, name: str) -> list:
    # Nova's name filter is a regular expression (web-1 also finds web-10): compare exactly;
    # a server just deleted is listed as DELETED for a moment: it no longer counts
    return oldest_first(s for s in pc.compute.servers(name=name)
                        if s.name == name and s.status != "DELETED")


def the_server(pc, project: str, name: str):
    found = named(pc, name)
    if not found:
        raise NotFound(f"server {name!r} not found in project {project}")
    return found[0]


def fault(server) -> str:
    return (server.fault or {}).get("message") or "no reason given"


def flavor_name(server) -> str | None:
    return (server.flavor or {}).get("original_name")


def pick(kind: str, wanted: str, candidates, where: str = "in the cloud"):
    """A flavor, image or network by id or name, out of `candidates`. NotFound says which,
    and what there is; two of one name (Glance allows it) is a Conflict naming their ids,
    never the SDK's "More than one ... exists"."""
    candidates = list(candidates)
    found = ([c for c in candidates if c.id == wanted]
             or oldest_first(c for c in candidates if c.name == wanted))
    if not found:
        known = ", ".join(sorted({c.name for c in candidates if c.name})) or "none"
        raise NotFound(f"{kind} {wanted!r} not found {where} (there are: {known})")
    if len(found) > 1:
        raise Conflict(f"{len(found)} {kind}s are named {wanted!r} {where} "
                       f"({', '.join(c.id for c in found)}): give the id of the one meant")
    return found[0]


def settle(pc, server, timeout_s: float, what: str = "settle", leave: tuple[str, ...] = ()):
    """Until the server rests in a SETTLED status (other than those in `leave`) with no task
    running: after a reboot the status stays ACTIVE while task_state says rebooting, and the
    next action would get 409; a confirmed resize stays VERIFY_RESIZE, with no task, until
    the compute host has finished it."""
    deadline = time.monotonic() + timeout_s
    while True:
        server = pc.compute.get_server(server.id)
        if server.status in SETTLED and server.status not in leave and not server.task_state:
            return server
        if time.monotonic() > deadline:
            raise ProviderError(f"server {server.name} did not {what} within {timeout_s:.0f}s:"
                                f" still {server.status}/{server.task_state}")
        time.sleep(0.5)


def ensure(pc, name: str, create: Callable[[], object], timeout_s: float) -> tuple[object, list]:
    """The server named `name`, made if missing; returns it with the faults of failed
    creates it replaced. A server that went to ERROR before it ever ran (no launched_at)
    holds nothing worth keeping and would fail every retry with its old fault: it is deleted
    and made again. One that has run is kept: deleting it could lose data."""
    found = [settle(pc, s, timeout_s) for s in named(pc, name)]
    failed = [s for s in found if s.status == "ERROR" and not s.launched_at]
    for server in failed:
        pc.compute.delete_server(server)
    for server in failed:
        pc.compute.wait_for_delete(server, interval=0.5, wait=int(timeout_s))
    gone = {s.id for s in failed}
    kept = [s for s in found if s.id not in gone]
    server = kept[0] if kept else settle(pc, create(), timeout_s, "finish building")
    if server.status == "ERROR":
        if server.launched_at:
            raise ProviderError(f"server {name} is in ERROR ({fault(server)}); it has run "
                                "before, so CityOps leaves it for a person to look at")
        raise ProviderError(f"server {name} went to ERROR: {fault(server)} (a retry deletes"
                            " it and creates it again)")
    return server, [fault(s) for s in failed]


def act(pc, server, action: str, target_flavor: str | None, timeout_s: float):
    """start, stop, reboot or resize, idempotently: a server already where the action leads
    is left be (stop on SHUTOFF succeeds at once)."""
    server = settle(pc, server, timeout_s)
    if server.status == "ERROR":
        raise Conflict(f"server {server.name} is in ERROR ({fault(server)}): cannot {action} it")
    if server.status == "VERIFY_RESIZE":
        # an interrupted resize (CityOps always confirms its own); a resize to another
        # flavor than the one pending is reverted first
        server = finish_resize(pc, server, target_flavor if action == "resize" else None,
                               timeout_s)
    if action == "resize":
        return resize(pc, server, target_flavor, timeout_s)
    wanted = "SHUTOFF" if action == "stop" else "ACTIVE"
    if action == "stop" and server.status != "SHUTOFF":
        pc.compute.stop_server(server)
    elif action == "start" and server.status != "ACTIVE":
        pc.compute.start_server(server)
    elif action == "reboot":
        # a stopped server reboots by starting: either way it comes up freshly booted
        if server.status == "SHUTOFF":
            pc.compute.start_server(server)
        else:
            pc.compute.reboot_server(server, "SOFT")
    server = settle(pc, server, timeout_s, action)
    if server.status != wanted:
        raise ProviderError(f"{action} server {server.name}: the cloud left it "
                            f"{server.status} ({fault(server)})")
    return server


def finish_resize(pc, server, target_flavor: str | None, timeout_s: float):
    if target_flavor is None or flavor_name(server) == target_flavor:
        pc.compute.confirm_server_resize(server)
    else:
        pc.compute.revert_server_resize(server)
    server = settle(pc, server, timeout_s, "finish the pending resize", ("VERIFY_RESIZE",))
    if server.status == "ERROR":
        raise ProviderError(f"server {server.name}: the pending resize did not finish: "
                            f"{server.status} ({fault(server)})")
    return server


def resize(pc, server, target_flavor: str | None, timeout_s: float):
    if not target_flavor:
        raise Conflict("resize needs a flavor")
    target = pick("flavor", target_flavor, pc.compute.flavors())
    if flavor_name(server) == target.name:
        return server
    pc.compute.resize_server(server, target.id)
    server = settle(pc, server, timeout_s, f"resize to {target.name}")
    if server.status != "VERIFY_RESIZE":
        raise ProviderError(f"resize server {server.name} to {target.name}: the cloud left it "
                            f"{server.status} with flavor {flavor_name(server)} "
                            f"({fault(server)})")
    pc.compute.confirm_server_resize(server)
    return settle(pc, server, timeout_s, "confirm the resize", ("VERIFY_RESIZE",))


def delete_all(pc, name: str, timeout_s: float) -> list[str]:
    """Every server of that name (duplicates too): afterwards none is left."""
    found = named(pc, name)
    for server in found:
        pc.compute.delete_server(server)
    for server in found:
        pc.compute.wait_for_delete(server, interval=0.5, wait=int(timeout_s))
    return [s.id for s in found]
