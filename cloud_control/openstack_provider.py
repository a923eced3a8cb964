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
import time
from collections.abc import Iterator
from pathlib import Path

import openstack
import openstack.config
import openstack.connection
from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as os_exc

from cityops.errors import Conflict, NotFound, ProviderError, ProviderUnavailable, QuotaExceeded
from cloud_control.provider import (
    NetworkSpec,
    ProjectSpec,
    Resource,
    ServerSpec,
    Usage,
    VolumeSpec,
)

log = logging.getLogger(__name__)
_QUOTA = re.compile(r"Quota exceeded for (\w+): Requested (\d+), but already used (\d+) of (\d+)")
SERVICES = ("identity", "compute", "network", "image", "block-storage", "placement")


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


def _server(server, project: str) -> Resource:
    addresses = [a["addr"] for net in (server.addresses or {}).values() for a in net]
    return Resource("server", server.id, server.name, project, server.status,
                    {"flavor": (server.flavor or {}).get("original_name"),
                     "addresses": addresses, "metadata": dict(server.metadata or {}),
                     "task_state": server.task_state})


class OpenStackProvider:
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
                self.conn.identity.find_project(project, ignore_missing=False)
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
            # the platform's own user works inside every department project it manages
            user = identity.find_user(self.conn.current_user_id, ignore_missing=False)
            for role in ("admin", "member"):
                found = identity.find_role(role)
                if found is not None:
                    identity.assign_project_role_to_user(project, user, found)
            self._apply_quotas(project.id, spec)
        return Resource("project", project.id, project.name, project.name, "active",
                        {"department": spec.department})

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

    # -- catalogue ----------------------------------------------------------------------------
    def flavors(self) -> list[dict]:
        with _translated("flavors"):
            return [{"name": f.name, "vcpus": f.vcpus, "ram_mb": f.ram, "disk_gb": f.disk}
                    for f in self.conn.compute.flavors()]

    def images(self) -> list[dict]:
        with _translated("images"):
            return [{"name": i.name, "id": i.id, "status": i.status, "size": i.size}
                    for i in self.conn.image.images()]

    # -- networks -----------------------------------------------------------------------------
    def ensure_network(self, spec: NetworkSpec) -> Resource:
        pc = self._in(spec.project)
        with _translated(f"network {spec.name}"):
            net = pc.network.find_network(spec.name, project_id=pc.current_project_id)
            if net is None:
                net = pc.network.create_network(name=spec.name)
            subnet_name = f"{spec.name}-subnet"
            subnet = pc.network.find_subnet(subnet_name, network_id=net.id)
            if subnet is None:
                subnet = pc.network.create_subnet(network_id=net.id, name=subnet_name,
                                                  ip_version=4, cidr=spec.cidr)
            if spec.external_access:
                self._ensure_router(pc, f"{spec.name}-router", subnet)
        return Resource("network", net.id, net.name, spec.project, net.status,
                        {"cidr": spec.cidr})

    def _ensure_router(self, pc, name: str, subnet) -> None:
        """Floating IPs reach a subnet only through a router to the external network."""
        if pc.network.find_router(name, project_id=pc.current_project_id) is not None:
            return
        external = next(iter(self.conn.network.networks(is_router_external=True)), None)
        if external is None:
            raise ProviderError("the cloud has no external network for floating IPs")
        router = pc.network.create_router(
            name=name, external_gateway_info={"network_id": external.id})
        pc.network.add_interface_to_router(router, subnet_id=subnet.id)

    # -- servers ------------------------------------------------------------------------------
    def ensure_server(self, spec: ServerSpec, timeout_s: float = 300) -> Resource:
        pc = self._in(spec.project)
        with _translated(f"server {spec.name}"):
            server = pc.compute.find_server(spec.name)
            if server is None:
                server = pc.compute.create_server(**self._server_attrs(pc, spec))
            server = self._wait_settled(pc, server, timeout_s)
        if server.status == "ERROR":
            fault = (server.fault or {}).get("message", "no reason given")
            raise ProviderError(f"server {spec.name} went to ERROR: {fault}")
        return _server(server, spec.project)

    @staticmethod
    def _server_attrs(pc, spec: ServerSpec) -> dict:
        flavor = pc.compute.find_flavor(spec.flavor, ignore_missing=False)
        image = pc.image.find_image(spec.image, ignore_missing=False)
        # the platform's user is admin in the project, and Neutron shows an admin every
        # project's networks: look only in this project's (and the shared ones)
        network = pc.network.find_network(spec.network, project_id=pc.current_project_id)
        network = network or pc.network.find_network(spec.network, is_shared=True,
                                                      ignore_missing=False)
        attrs = {"name": spec.name, "flavor_id": flavor.id, "image_id": image.id,
                 "networks": [{"uuid": network.id}], "metadata": spec.metadata}
        if spec.key_name:
            attrs["key_name"] = spec.key_name
        if spec.security_groups:
            attrs["security_groups"] = [{"name": g} for g in spec.security_groups]
        if spec.user_data:
            attrs["user_data"] = base64.b64encode(spec.user_data.encode()).decode()
        return attrs

    @staticmethod
    def _wait_settled(pc, server, timeout_s: float, want: tuple[str, ...] = ("ACTIVE",)):
        """Until the status is wanted (or ERROR) and no task runs: after a reboot the status
        stays ACTIVE while task_state says rebooting, and the next action would get a 409."""
        deadline = time.monotonic() + timeout_s
        while True:
            server = pc.compute.get_server(server.id)
            if server.status == "ERROR" or (server.status in want and not server.task_state):
                return server
            if time.monotonic() > deadline:
                raise ProviderError(
                    f"server {server.name} still {server.status}/{server.task_state} "
                    f"after {timeout_s:.0f}s"
                )
            time.sleep(0.5)

    def server(self, project: str, name: str) -> Resource:
        pc = self._in(project)
        with _translated(f"server {name}"):
            return _server(pc.compute.find_server(name, ignore_missing=False), project)

    def server_action(self, project: str, name: str, action: str, flavor: str | None = None,
                      timeout_s: float = 300) -> Resource:
        pc = self._in(project)
        with _translated(f"{action} server {name}"):
            server = pc.compute.find_server(name, ignore_missing=False)
            if action == "start":
                pc.compute.start_server(server)
            elif action == "stop":
                pc.compute.stop_server(server)
            elif action == "reboot":
                pc.compute.reboot_server(server, "SOFT")
            elif action == "resize":
                if not flavor:
                    raise ProviderError("resize needs a flavor")
                target = pc.compute.find_flavor(flavor, ignore_missing=False)
                pc.compute.resize_server(server, target.id)
                server = self._wait_settled(pc, server, timeout_s, ("VERIFY_RESIZE",))
                pc.compute.confirm_server_resize(server)
            else:
                raise ProviderError(f"unknown server action {action!r}")
            want = ("SHUTOFF",) if action == "stop" else ("ACTIVE",)
            return _server(self._wait_settled(pc, server, timeout_s, want), project)

    def delete_server(self, project: str, name: str, timeout_s: float = 300) -> None:
        pc = self._in(project)
        with _translated(f"delete server {name}"):
            server = pc.compute.find_server(name)
            if server is not None:
                pc.compute.delete_server(server)
                pc.compute.wait_for_delete(server, wait=int(timeout_s))

    # -- volumes ------------------------------------------------------------------------------
    def ensure_volume(self, spec: VolumeSpec, timeout_s: float = 300) -> Resource:
        pc = self._in(spec.project)
        with _translated(f"volume {spec.name}"):
            volume = pc.block_storage.find_volume(spec.name)
            if volume is None:
                volume = pc.block_storage.create_volume(name=spec.name, size=spec.size_gb)
            volume = pc.block_storage.wait_for_status(
                volume, status="available", failures=["error"], wait=int(timeout_s))
        return Resource("volume", volume.id, volume.name, spec.project, volume.status,
                        {"size_gb": volume.size})

    def attach_volume(self, project: str, server: str, volume: str,
                      timeout_s: float = 300) -> Resource:
        return self._set_attachment(project, server, volume, True, timeout_s)

    def detach_volume(self, project: str, server: str, volume: str,
                      timeout_s: float = 300) -> Resource:
        return self._set_attachment(project, server, volume, False, timeout_s)

    def _set_attachment(self, project: str, server: str, volume: str, attached: bool,
                        timeout_s: float) -> Resource:
        """Attach or detach, idempotently: a volume already in the wanted state is left be."""
        pc = self._in(project)
        verb = f"attach volume {volume} to" if attached else f"detach volume {volume} from"
        want = "in-use" if attached else "available"
        with _translated(f"{verb} {server}"):
            srv = pc.compute.find_server(server, ignore_missing=False)
            vol = pc.block_storage.find_volume(volume, ignore_missing=False)
            if attached and vol.status != "in-use":
                pc.compute.create_volume_attachment(srv, volume_id=vol.id)
            elif not attached and vol.status == "in-use":
                pc.compute.delete_volume_attachment(vol.id, srv)
            vol = pc.block_storage.wait_for_status(vol, status=want, failures=["error"],
                                                   wait=int(timeout_s))
        return Resource("volume", vol.id, vol.name, project, vol.status,
                        {"server": server} if attached else {})

    def delete_volume(self, project: str, name: str, timeout_s: float = 300) -> None:
        pc = self._in(project)
        with _translated(f"delete volume {name}"):
            volume = pc.block_storage.find_volume(name)
            if volume is not None:
                pc.block_storage.delete_volume(volume)
                pc.block_storage.wait_for_delete(volume, wait=int(timeout_s))

    def ensure_floating_ip(self, project: str, server: str) -> Resource:
        pc = self._in(project)
        with _translated(f"floating IP for {server}"):
            srv = pc.compute.find_server(server, ignore_missing=False)
            port = next(iter(pc.network.ports(device_id=srv.id)), None)
            if port is None:
                raise ProviderError(f"server {server} has no port to attach a floating IP to")
            ip = next(iter(pc.network.ips(port_id=port.id)), None)
            if ip is None:
                external = next(iter(self.conn.network.networks(is_router_external=True)), None)
                if external is None:
                    raise ProviderError("the cloud has no external network for floating IPs")
                ip = pc.network.create_ip(floating_network_id=external.id, port_id=port.id)
        return Resource("floating_ip", ip.id, ip.floating_ip_address, project, ip.status,
                        {"server": server})

    # -- monitoring: see cloud_control/inventory.py for what is done with these -----------------
    def inventory(self) -> list[Resource]:
        with _translated("inventory"):
            names = {p.id: p.name for p in self.conn.identity.projects()}
            found = [_server(s, names.get(s.project_id, s.project_id))
                     for s in self.conn.compute.servers(all_projects=True)]
            found += [Resource("volume", v.id, v.name, names.get(v.project_id, ""), v.status,
                               {"size_gb": v.size})
                      for v in self.conn.block_storage.volumes(all_projects=True)]
            found += [Resource("network", n.id, n.name, names.get(n.project_id, ""), n.status,
                               {"external": bool(n.is_router_external)})
                      for n in self.conn.network.networks()]
        return found

    def capacity(self) -> list[Usage]:
        with _translated("capacity"):
            # from compute 2.88 the statistics carry no totals: ask as 2.87
            stats = self.conn.compute.get("/os-hypervisors/statistics",
                                          microversion="2.87").json()["hypervisor_statistics"]
            usages = [Usage("hypervisor", "vcpus", stats["vcpus_used"], stats["vcpus"]),
                      Usage("hypervisor", "ram_mb", stats["memory_mb_used"], stats["memory_mb"]),
                      Usage("hypervisor", "disk_gb", stats["local_gb_used"], stats["local_gb"])]
            for project in self.conn.identity.projects():
                if project.name in ("service", "admin"):
                    continue
                quota = self.conn.compute.get_quota_set(project.id, usage=True)
                used = quota.usage or {}
                usages += [Usage(project.name, m, used.get(m, 0), getattr(quota, m) or -1)
                           for m in ("cores", "ram", "instances")]
        return usages

    def service_health(self) -> dict[str, str]:
        health = {}
        for service in SERVICES:
            try:
                self.conn.session.get(self.conn.endpoint_for(service), timeout=5,
                                      raise_exc=False)
                health[service] = "ok"
            except Exception as err:
                health[service] = f"down: {type(err).__name__}"
        return health
