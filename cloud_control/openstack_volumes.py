"""Volumes on a project-scoped openstacksdk connection, for openstack_provider.py.

Like openstack_servers.py: no openstack import, read the cloud first, converge from any
state, check preconditions before acting (a volume in use elsewhere is never "attached" to a
second server), and report the cloud's own view of the result.
"""

from __future__ import annotations

import time

from cityops.errors import Conflict, NotFound, ProviderError
from cloud_control.openstack_servers import oldest_first

# statuses Cinder passes through on its own; every other one waits for a person or a request
MOVING = ("creating", "attaching", "detaching", "extending", "deleting", "reserved",
          "downloading", "uploading", "retyping", "backing-up", "restoring-backup",
          "maintenance", "awaiting-transfer")


def named(pc, name: str) -> list:
    return oldest_first(v for v in pc.block_storage.volumes(name=name) if v.name == name)


def the_volume(pc, project: str, name: str):
    found = named(pc, name)
    if not found:
        raise NotFound(f"volume {name!r} not found in project {project}")
    return found[0]


def settle(pc, volume, timeout_s: float, what: str = "settle"):
    deadline = time.monotonic() + timeout_s
    while True:
        volume = pc.block_storage.get_volume(volume.id)
        if volume.status not in MOVING:
            return volume
        if time.monotonic() > deadline:
            raise ProviderError(f"volume {volume.name} did not {what} within "
                                f"{timeout_s:.0f}s: still {volume.status}")
        time.sleep(0.5)


def holders(volume) -> list[str]:
    """The ids of the servers the volume is attached to, as Cinder records it."""
    return [a["server_id"] for a in volume.attachments or [] if a.get("server_id")]


def server_names(pc, ids: list[str]) -> list[str]:
    names = []
    for server_id in ids:
        found = pc.compute.find_server(server_id)
        names.append(found.name if found is not None else server_id)
    return names


def ensure(pc, name: str, size_gb: int, timeout_s: float) -> tuple[object, list[str]]:
    """The volume, made if missing (one in `error` from a failed create is made again) and
    grown to size_gb if smaller; returns it with the notes of what was repaired."""
    notes = []
    found = [settle(pc, v, timeout_s) for v in named(pc, name)]
    for failed in [v for v in found if v.status == "error" and not holders(v)]:
        pc.block_storage.delete_volume(failed)
        pc.block_storage.wait_for_delete(failed, interval=0.5, wait=int(timeout_s))
        notes.append(f"deleted volume {failed.id}, left in error by a failed create")
        found.remove(failed)
    volume = found[0] if found else pc.block_storage.create_volume(name=name, size=size_gb)
    volume = settle(pc, volume, timeout_s, "finish creating")
    if volume.status == "error":
        raise ProviderError(f"volume {name} went to error (a retry deletes it and creates it"
                            " again)")
    if volume.size > size_gb:
        raise Conflict(f"volume {name} is {volume.size} GB in the cloud, more than the "
                       f"{size_gb} GB asked: a volume cannot shrink")
    if volume.size < size_gb:
        if volume.status != "available":
            raise Conflict(f"volume {name} is {volume.status}: it grows from {volume.size} to "
                           f"{size_gb} GB only when detached (available)")
        pc.block_storage.extend_volume(volume, size_gb)
        volume = settle(pc, volume, timeout_s, f"grow to {size_gb} GB")
        notes.append(f"grew volume {name} to {volume.size} GB")
    return volume, notes


def attach(pc, server, volume, timeout_s: float):
    volume = settle(pc, volume, timeout_s)
    on = holders(volume)
    if server.id in on:
        return volume
    if on:
        raise Conflict(f"volume {volume.name} is attached to server "
                       f"{', '.join(server_names(pc, on))}, not {server.name}: detach it "
                       "from there first")
    if volume.status != "available":
        raise Conflict(f"volume {volume.name} is {volume.status}: only an available volume "
                       "can be attached")
    pc.compute.create_volume_attachment(server, volume=volume)
    volume = settle(pc, volume, timeout_s, f"attach to {server.name}")
    if server.id not in holders(volume):
        raise ProviderError(f"attach volume {volume.name} to {server.name}: the cloud left it "
                            f"{volume.status}, attached to {server_names(pc, holders(volume))}")
    return volume


def detach(pc, server, volume, timeout_s: float):
    volume = settle(pc, volume, timeout_s)
    on = holders(volume)
    if server.id not in on:
        if on:
            raise Conflict(f"volume {volume.name} is attached to server "
                           f"{', '.join(server_names(pc, on))}, not {server.name}")
        return volume  # already detached: nothing to do
    pc.compute.delete_volume_attachment(server, volume, ignore_missing=False)
    volume = settle(pc, volume, timeout_s, f"detach from {server.name}")
    if server.id in holders(volume):
        raise ProviderError(f"detach volume {volume.name} from {server.name}: the cloud left"
                            f" it {volume.status}, still attached")
    return volume


def delete_all(pc, project: str, name: str, timeout_s: float) -> list[str]:
    found = [settle(pc, v, timeout_s) for v in named(pc, name)]
    for volume in found:
        if holders(volume):
            raise Conflict(f"volume {name} is attached to server "
                           f"{', '.join(server_names(pc, holders(volume)))} in project "
                           f"{project}: detach it first")
    for volume in found:
        pc.block_storage.delete_volume(volume)
    for volume in found:
        pc.block_storage.wait_for_delete(volume, interval=0.5, wait=int(timeout_s))
    return [v.id for v in found]
