"""The removal half of the OpenStack adapter: networks, subnets, routers, floating IPs and
whole projects, so that what a department no longer uses stops holding its quota.

A mixin of `OpenStackProvider` (openstack_provider.py owns the connection, `_in` and the
translation of errors): it imports nothing of openstacksdk itself. Every removal is
idempotent (what is already gone is skipped) and refuses, naming what is in the way, where
OpenStack would otherwise fail halfway or leave orphans (a project that still holds
servers: OpenStack would delete the project and keep the servers running, billed to nobody).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cityops.errors import Conflict
from cloud_control import openstack_servers as servers
from cloud_control.openstack_watch import _translated

ROUTER_PORTS = ("network:router_interface", "network:router_interface_distributed",
                "network:ha_router_replicated_interface")


class CloudCleanup:
    conn: Any
    _projects: dict[str, object]
    _in: Callable[[str], Any]  # OpenStackProvider's: a connection scoped to the project

    def _project_or_none(self, project: str):
        with _translated(f"project {project}"):
            return self.conn.identity.find_project(project)

    def release_floating_ips(self, project: str, server: str) -> list[str]:
        """Give back to the pool the floating IPs of the server's ports (before the server
        goes: afterwards nothing says which floating IP was its)."""
        if self._project_or_none(project) is None:
            return []
        pc = self._in(project)
        released = []
        with _translated(f"release the floating IPs of server {server}"):
            for srv in servers.named(pc, server):
                for port in pc.network.ports(device_id=srv.id):
                    for ip in pc.network.ips(port_id=port.id):
                        pc.network.delete_ip(ip, ignore_missing=True)
                        released.append(ip.floating_ip_address)
        return released

    def delete_floating_ip(self, project: str, address: str) -> list[str]:
        pc = self._in(project)
        with _translated(f"delete floating IP {address}"):
            found = list(pc.network.ips(floating_ip_address=address,
                                        project_id=pc.current_project_id))
            for ip in found:
                pc.network.delete_ip(ip, ignore_missing=True)
        return [ip.id for ip in found]

    def delete_router(self, project: str, name: str) -> list[str]:
        pc = self._in(project)
        with _translated(f"delete router {name}"):
            found = list(pc.network.routers(name=name, project_id=pc.current_project_id))
            for router in found:
                self._drop_router(pc, router)
        return [r.id for r in found]

    @staticmethod
    def _drop_router(pc, router) -> None:
        # Neutron refuses to delete a router that still has interfaces
        for port in pc.network.ports(device_id=router.id):
            if port.device_owner in ROUTER_PORTS:
                pc.network.remove_interface_from_router(router, port_id=port.id)
        pc.network.delete_router(router, ignore_missing=True)

    def delete_subnet(self, project: str, name: str) -> list[str]:
        pc = self._in(project)
        with _translated(f"delete subnet {name}"):
            found = list(pc.network.subnets(name=name, project_id=pc.current_project_id))
            for subnet in found:
                self._refuse_if_servers(pc, subnet.network_id, f"subnet {name}", subnet.id)
                self._unplug_routers(pc, subnet.network_id, subnet.id)
                pc.network.delete_subnet(subnet, ignore_missing=True)
        return [s.id for s in found]

    def delete_network(self, project: str, name: str) -> list[str]:
        """The network, its subnets, and the router ensure_network made for it
        (`<name>-router`); other routers only lose their interface on it."""
        pc = self._in(project)
        with _translated(f"delete network {name}"):
            found = list(pc.network.networks(name=name, project_id=pc.current_project_id))
            for net in found:
                self._refuse_if_servers(pc, net.id, f"network {name}")
            removed = self.delete_router(project, f"{name}-router") if found else []
            for net in found:
                self._unplug_routers(pc, net.id)
                for subnet in pc.network.subnets(network_id=net.id):
                    pc.network.delete_subnet(subnet, ignore_missing=True)
                pc.network.delete_network(net, ignore_missing=True)
        return [n.id for n in found] + removed

    @staticmethod
    def _refuse_if_servers(pc, network_id: str, what: str, subnet_id: str | None = None) -> None:
        users = [p.device_id for p in pc.network.ports(network_id=network_id)
                 if (p.device_owner or "").startswith("compute:")
                 and (subnet_id is None or any(f.get("subnet_id") == subnet_id
                                               for f in p.fixed_ips or []))]
        if users:
            names = sorted({s.name for s in pc.compute.servers() if s.id in users} or users)
            raise Conflict(f"{what} is still used by servers {', '.join(names)}: "
                           "delete them first")

    @staticmethod
    def _unplug_routers(pc, network_id: str, subnet_id: str | None = None) -> None:
        for port in pc.network.ports(network_id=network_id):
            on_subnet = subnet_id is None or any(f.get("subnet_id") == subnet_id
                                                 for f in port.fixed_ips or [])
            if port.device_owner in ROUTER_PORTS and on_subnet:
                pc.network.remove_interface_from_router(port.device_id, port_id=port.id)

    def delete_project(self, project: str) -> list[str]:
        """Only an empty project: what it still holds is named, for a person to decide."""
        found = self._project_or_none(project)
        if found is None:
            return []
        pc = self._in(project)
        with _translated(f"delete project {project}"):
            mine = {"project_id": found.id}
            held = {
                "servers": [s.name for s in pc.compute.servers()],
                "volumes": [v.name or v.id for v in pc.block_storage.volumes()],
                "networks": [n.name for n in pc.network.networks(**mine)],
                "routers": [r.name for r in pc.network.routers(**mine)],
                "floating IPs": [i.floating_ip_address for i in pc.network.ips(**mine)],
            }
            if any(held.values()):
                what = "; ".join(f"{k} {', '.join(sorted(v))}" for k, v in held.items() if v)
                raise Conflict(f"project {project} still holds {what}: delete them first")
            # Neutron made a default security group for it: not worth keeping as an orphan
            for group in pc.network.security_groups(**mine):
                pc.network.delete_security_group(group, ignore_missing=True)
            self.conn.identity.delete_project(found, ignore_missing=True)
        self._projects.pop(project, None)
        return [found.id]
