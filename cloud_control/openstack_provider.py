"""The only openstacksdk import: the Provider protocol over a real OpenStack.

openstacksdk is synchronous; callers run these methods in a worker thread. Department work
happens in a connection scoped to the department's project, so names are unique per project
and quotas apply as they would to the department itself.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import openstack
import openstack.config
import openstack.connection
from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as os_exc

from cityops.errors import Conflict, NotFound, ProviderError, ProviderUnavailable, QuotaExceeded
from cloud_control import openstack_networks as networks
from cloud_control import openstack_servers as servers
from cloud_control import openstack_volumes as volumes
from cloud_control.openstack_cleanup import CloudCleanup
from cloud_control.openstack_watch import CloudWatch
from cloud_control.provider import (
    NetworkSpec,
    ProjectSpec,
    Resource,
    ServerSpec,
    VolumeSpec,
)

log = logging.getLogger(__name__)
_QUOTA = re.compile(r"Quota exceeded for (\w+): Requested (\d+), but already used (\d+) of (\d+)")


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """OpenStack's exceptions become ours, with a message a person can act on."""
    try:
        yield
    except os_exc.NotFoundException as err:
        raise NotFound(f"{what}: {err.details or 'not found in the cloud'}") from err
    except os_exc.ConflictException as err:
        raise Conflict(f"{what}: {err.details or err}") from err
    except os_exc.HttpException as err:
        text = str(err.details or err)
        match = _QUOTA.search(text)
        if match:
            metric, asked, used, limit = match[1], *map(int, match.groups()[1:])
            raise QuotaExceeded(
                f"{what}: quota exceeded for {metric}: requested {asked}, "
                f"{max(0, limit - used)} left", metric=metric,
            ) from err
        if err.status_code == 403 and "quota" in text.lower():
            raise QuotaExceeded(f"{what}: {text}") from err
        raise ProviderError(f"{what}: {text}") from err
    except (ks_exc.ConnectFailure, ks_exc.ConnectTimeout, ks_exc.DiscoveryFailure) as err:
        raise ProviderUnavailable(f"{what}: the cloud does not answer: {err}") from err
    except os_exc.ResourceTimeout as err:
        raise ProviderError(f"{what}: timed out: {err}") from err
    except os_exc.SDKException as err:
        raise ProviderError(f"{what}: {err}") from err


def _server(server, project: str, **extra) -> Resource:
    addresses = [a["addr"] for net in (server.addresses or {}).values() for a in net]
    return Resource("server", server.id, server.name, project, server.status,
                    {"flavor": servers.flavor_name(server),
                     "addresses": addresses, "metadata": dict(server.metadata or {}),
                     "task_state": server.task_state, **extra})


def _managed_server(pc, project: str, name: str, **extra) -> tuple[object, Resource]:
    """The server CityOps manages under this name (the oldest of duplicates), and its record
    naming the duplicates so that a person can remove them."""
    found = servers.named(pc, name)
    if not found:
        raise NotFound(f"server {name!r} not found in project {project}")
    return found[0], _server(found[0], project, duplicates=[s.id for s in found[1:]], **extra)


def _volume(volume, project: str, pc, **extra) -> Resource:
    held_by = volumes.server_names(pc, volumes.holders(volume))
    return Resource("volume", volume.id, volume.name, project, volume.status,
                    {"size_gb": volume.size, "server": held_by[0] if held_by else None,
                     "servers": held_by, **extra})


def _departments(project) -> list[str]:
    return [t.split(":", 1)[1] for t in project.tags or [] if t.startswith("department:")]


class OpenStackProvider(CloudWatch, CloudCleanup):
    """Monitoring (inventory, capacity, health) is in openstack_watch.py, removal of
    networks, routers, floating IPs and projects in openstack_cleanup.py."""

    def __init__(self, cloud: str, clouds_yaml: Path | None = None) -> None:
        self.cloud = cloud
        with _translated(f"connect to cloud {cloud!r}"):
            # the file is named explicitly: no process-wide OS_CLIENT_CONFIG_FILE to juggle
            files = [str(clouds_yaml)] if clouds_yaml else None
            region = openstack.config.OpenStackConfig(config_files=files).get_one(cloud=cloud)
            self.conn = openstack.connection.Connection(config=region)
        self._projects: dict[str, object] = {}

    def _in(self, project: str):
        """A connection scoped to a department project (cached)."""
        if project not in self._projects:
            with _translated(f"project {project}"):
                if self.conn.identity.find_project(project) is None:
                    raise NotFound(f"project {project!r} not found in the cloud")
                self._projects[project] = self.conn.connect_as_project(project)
        return self._projects[project]

    # -- projects -----------------------------------------------------------------------------
    def ensure_project(self, spec: ProjectSpec) -> Resource:
        with _translated(f"project {spec.name}"):
            identity = self.conn.identity
            project = identity.find_project(spec.name)
            if project is None:
                project = identity.create_project(
                    name=spec.name, description=spec.description, domain_id="default",
                    tags=[f"department:{spec.department}"] if spec.department else [],
                )
            project = self._ensure_department(project, spec.department)
            # the platform's own user works inside every department project it manages
            user = identity.find_user(self.conn.current_user_id, ignore_missing=False)
            for role in ("admin", "member"):
                found = identity.find_role(role)
                if found is not None:
                    identity.assign_project_role_to_user(project, user, found)
            self._apply_quotas(project.id, spec)
            quotas = self._quotas(project.id)
        departments = _departments(project)
        return Resource("project", project.id, project.name, project.name,
                        "active" if project.is_enabled else "disabled",
                        {"department": departments[0] if departments else None,
                         "description": project.description or "", "quotas": quotas})

    def _ensure_department(self, project, department: str | None):
        """A project belongs to one department: an existing one of another department is
        refused (moving it would hand its servers to another department's staff)."""
        owners = _departments(project)
        if department is None or owners == [department]:
            return project
        if owners:
            raise Conflict(f"project {project.name} belongs to department "
                           f"{', '.join(owners)} in the cloud, not {department}")
        tags = [*(project.tags or []), f"department:{department}"]
        return self.conn.identity.update_project(project, tags=tags)

    def _apply_quotas(self, project_id: str, spec: ProjectSpec) -> None:
        q = spec.quotas
        compute = {k: v for k, v in {"cores": q.cores, "ram": q.ram_mb,
                                     "instances": q.instances}.items() if v is not None}
        if compute:
            self.conn.compute.update_quota_set(project_id, **compute)
        volume = {k: v for k, v in {"volumes": q.volumes,
                                    "gigabytes": q.gigabytes}.items() if v is not None}
        if volume:
            self.conn.block_storage.update_quota_set(project_id, **volume)
        network = {k: v for k, v in {"floatingip": q.floating_ips,
                                     "network": q.networks}.items() if v is not None}
        if network:
            self.conn.network.update_quota(project_id, **network)

    def _quotas(self, project_id: str) -> dict:
        """The quotas as the cloud now holds them (-1: unlimited), not as they were asked."""
        compute = self.conn.compute.get_quota_set(project_id)
        volume = self.conn.block_storage.get_quota_set(project_id)
        network = self.conn.network.get_quota(project_id)
        return {"cores": compute.cores, "ram_mb": compute.ram, "instances": compute.instances,
                "volumes": volume.volumes, "gigabytes": volume.gigabytes,
                "floating_ips": network.floating_ips, "networks": network.networks}

    # -- catalogue ----------------------------------------------------------------------------
    def flavors(self) -> list[dict]:
        with _translated("flavors"):
            return [{"name": f.name, "vcpus": f.vcpus, "ram_mb": f.ram, "disk_gb": f.disk}
                    for f in self.conn.compute.flavors()]

    def images(self) -> list[dict]:
        with _translated("images"):
            return [{"name": i.name, "id": i.id, "status": i.status, "size": i.size}
                    for i in self.conn.image.images()]

    # -- networks (the logic: openstack_networks.py) --------------------------------------
    def ensure_network(self, spec: NetworkSpec) -> Resource:
        pc = self._in(spec.project)
        with _translated(f"network {spec.name}"):
            net, subnet, router = networks.ensure(pc, spec, self._external_network)
        return Resource("network", net.id, net.name, spec.project, net.status,
                        {"cidr": subnet.cidr, "subnet": subnet.id,
                         "router": router.id if router is not None else None,
                         "external_access": router is not None})

    def _external_network(self):
        external = next(iter(self.conn.network.networks(is_router_external=True)), None)
        if external is None:
            raise ProviderError("the cloud has no external network for floating IPs")
        return external

    # -- servers (the logic: openstack_servers.py) ----------------------------------------
    def ensure_server(self, spec: ServerSpec, timeout_s: float = 300) -> Resource:
        pc = self._in(spec.project)
        with _translated(f"server {spec.name}"):
            server, replaced = servers.ensure(
                pc, spec.name, lambda: pc.compute.create_server(**self._server_attrs(pc, spec)),
                timeout_s)
            others = [s.id for s in servers.named(pc, spec.name) if s.id != server.id]
        return _server(server, spec.project, duplicates=others, replaced_failed=replaced)

    def _server_attrs(self, pc, spec: ServerSpec) -> dict:
        flavor = servers.pick("flavor", spec.flavor, pc.compute.flavors())
        image = servers.pick("image", spec.image, pc.image.images())
        # the platform's user is admin in the project, and Neutron shows an admin every
        # project's networks: look only in this project's (and the shared ones)
        mine = list(pc.network.networks(project_id=pc.current_project_id))
        shared = [n for n in pc.network.networks(is_shared=True)
                  if n.id not in {m.id for m in mine}]
        network = servers.pick(
            "network", spec.network,
            next((c for c in (mine, shared) if any(spec.network in (n.id, n.name) for n in c)),
                 mine + shared), f"in project {spec.project} or shared")
        attrs = {"name": spec.name, "flavor_id": flavor.id, "image_id": image.id,
                 "networks": [{"uuid": network.id}], "metadata": spec.metadata}
        if spec.key_name:
            attrs["key_name"] = spec.key_name
        if spec.security_groups:
            attrs["security_groups"] = [{"name": g} for g in spec.security_groups]
        if spec.user_data:
            attrs["user_data"] = base64.b64encode(spec.user_data.encode()).decode()
        return attrs

    def server(self, project: str, name: str) -> Resource:
        pc = self._in(project)
        with _translated(f"server {name}"):
            return _managed_server(pc, project, name)[1]

    def server_action(self, project: str, name: str, action: str, flavor: str | None = None,
                      timeout_s: float = 300) -> Resource:
        pc = self._in(project)
        with _translated(f"{action} server {name}"):
            server, _ = _managed_server(pc, project, name)
            servers.act(pc, server, action, flavor, timeout_s)
            return _managed_server(pc, project, name)[1]

    def delete_server(self, project: str, name: str, timeout_s: float = 300) -> list[str]:
        pc = self._in(project)
        with _translated(f"delete server {name}"):
            return servers.delete_all(pc, name, timeout_s)

    # -- volumes (the logic: openstack_volumes.py) -----------------------------------------
    def ensure_volume(self, spec: VolumeSpec, timeout_s: float = 300) -> Resource:
        pc = self._in(spec.project)
        with _translated(f"volume {spec.name}"):
            volume, notes = volumes.ensure(pc, spec.name, spec.size_gb, timeout_s)
            duplicates = [v.id for v in volumes.named(pc, spec.name) if v.id != volume.id]
            return _volume(volume, spec.project, pc, duplicates=duplicates, repaired=notes)

    def attach_volume(self, project: str, server: str, volume: str,
                      timeout_s: float = 300) -> Resource:
        pc = self._in(project)
        with _translated(f"attach volume {volume} to {server}"):
            srv = servers.the_server(pc, project, server)
            vol = volumes.attach(pc, srv, volumes.the_volume(pc, project, volume), timeout_s)
            return _volume(vol, project, pc)

    def detach_volume(self, project: str, server: str, volume: str,
                      timeout_s: float = 300) -> Resource:
        pc = self._in(project)
        with _translated(f"detach volume {volume} from {server}"):
            srv = servers.the_server(pc, project, server)
            vol = volumes.detach(pc, srv, volumes.the_volume(pc, project, volume), timeout_s)
            return _volume(vol, project, pc)

    def delete_volume(self, project: str, name: str, timeout_s: float = 300) -> list[str]:
        pc = self._in(project)
        with _translated(f"delete volume {name}"):
            return volumes.delete_all(pc, project, name, timeout_s)

    def ensure_floating_ip(self, project: str, server: str) -> Resource:
        pc = self._in(project)
        with _translated(f"floating IP for {server}"):
            srv = servers.the_server(pc, project, server)
            port = networks.first(pc.network.ports(device_id=srv.id))
            if port is None:
                raise Conflict(f"server {server} has no port to attach a floating IP to")
            ip = networks.first(pc.network.ips(port_id=port.id))
            if ip is None:
                ip = pc.network.create_ip(floating_network_id=self._external_network().id,
                                          port_id=port.id)
        return Resource("floating_ip", ip.id, ip.floating_ip_address, project, ip.status,
                        {"server": srv.name, "port": ip.port_id,
                         "fixed_address": ip.fixed_ip_address})
