"""The monitoring half of the OpenStack adapter: the inventory part by part, capacity, and
the health of each service and of each compute and volume agent.

A mixin of `OpenStackProvider` (openstack_provider.py, which owns the connection and the
translation of openstacksdk's errors): it imports nothing of openstacksdk itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cloud_control.provider import Resource, Usage

# the inventory's parts, each listed on its own: one service not answering leaves only
# its own parts stale
INVENTORY_PARTS = ("project", "server", "volume", "network", "subnet", "router", "floating_ip")
SERVICE_OF_PART = {"project": "identity", "server": "compute", "volume": "block-storage",
                   "network": "network", "subnet": "network", "router": "network",
                   "floating_ip": "network"}
ENDPOINTS = ("compute", "network", "image", "block-storage", "placement")
# requests at once: each answer is mostly the cloud's own latency, and a county cloud has
# dozens of projects whose quotas are read one request each; few enough not to crowd an API
# served by a couple of processes
PARALLEL = 4
# an API that takes longer than this to answer its version document is down for users too
PROBE_TIMEOUT_S = 15


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    # imported when used: openstack_provider imports this module
    from cloud_control.openstack_provider import _translated as translated

    with translated(what):
        yield


def _down(err: BaseException) -> str:
    return f"down: {type(err).__name__}: {str(err)[:200]}"


class CloudWatch:
    conn: Any

    def project_names(self) -> dict[str, str]:
        """Project id -> name, for naming the owner of everything else."""
        with _translated("projects"):
            return {p.id: p.name for p in self.conn.identity.projects()}

    def inventory_part(self, kind: str, names: dict[str, str]) -> list[Resource]:
        """One part of the inventory (a kind of INVENTORY_PARTS), every project's."""
        lister: Callable[[dict[str, str]], list[Resource]] = getattr(self, f"_list_{kind}")
        with _translated(f"inventory of {kind}s"):
            return lister(names)

    def inventory(self) -> list[Resource]:
        names = self.project_names()
        return [r for kind in INVENTORY_PARTS for r in self.inventory_part(kind, names)]

    def _list_project(self, names: dict[str, str]) -> list[Resource]:
        return [Resource("project", p.id, p.name, p.name,
                         "enabled" if p.is_enabled else "disabled", {"tags": list(p.tags or [])})
                for p in self.conn.identity.projects()]

    def _list_server(self, names: dict[str, str]) -> list[Resource]:
        from cloud_control.openstack_provider import _server

        return [_server(s, names.get(s.project_id, s.project_id))
                for s in self.conn.compute.servers(all_projects=True)]

    def _list_volume(self, names: dict[str, str]) -> list[Resource]:
        return [Resource("volume", v.id, v.name or v.id, names.get(v.project_id, ""), v.status,
                         {"size_gb": v.size})
                for v in self.conn.block_storage.volumes(all_projects=True)]

    def _list_network(self, names: dict[str, str]) -> list[Resource]:
        return [Resource("network", n.id, n.name, names.get(n.project_id, ""), n.status,
                         {"external": bool(n.is_router_external), "shared": bool(n.is_shared)})
                for n in self.conn.network.networks()]

    def _list_subnet(self, names: dict[str, str]) -> list[Resource]:
        return [Resource("subnet", s.id, s.name or s.id, names.get(s.project_id, ""), "ACTIVE",
                         {"cidr": s.cidr, "network_id": s.network_id})
                for s in self.conn.network.subnets()]

    def _list_router(self, names: dict[str, str]) -> list[Resource]:
        return [Resource("router", r.id, r.name or r.id, names.get(r.project_id, ""), r.status,
                         {"external_gateway": bool(r.external_gateway_info)})
                for r in self.conn.network.routers()]

    def _list_floating_ip(self, names: dict[str, str]) -> list[Resource]:
        return [Resource("floating_ip", ip.id, ip.floating_ip_address,
                         names.get(ip.project_id, ""), ip.status,
                         {"port_id": ip.port_id, "fixed_ip": ip.fixed_ip_address})
                for ip in self.conn.network.ips()]

    def capacity(self) -> list[Usage]:
        with _translated("capacity"):
            # from compute 2.88 the statistics carry no totals: ask as 2.87
            stats = self.conn.compute.get("/os-hypervisors/statistics",
                                          microversion="2.87").json()["hypervisor_statistics"]
            usages = [Usage("hypervisor", "vcpus", stats["vcpus_used"], stats["vcpus"]),
                      Usage("hypervisor", "ram_mb", stats["memory_mb_used"], stats["memory_mb"]),
                      Usage("hypervisor", "disk_gb", stats["local_gb_used"], stats["local_gb"])]
            projects = [p for p in self.conn.identity.projects()
                        if p.name not in ("service", "admin")]
            with ThreadPoolExecutor(PARALLEL) as pool:
                quotas = list(pool.map(self._quota_or_error, projects))
            errors = [q for q in quotas if isinstance(q, Exception)]
            if errors and len(errors) == len(quotas):
                raise errors[0]
            for project, quota in zip(projects, quotas, strict=True):
                if isinstance(quota, Exception):
                    # deleted since it was listed (departments come and go): not a failure
                    continue
                used = quota.usage or {}
                # a quota of 0 is a limit of nothing, not unlimited: only None means unset
                usages += [Usage(project.name, m, used.get(m, 0),
                                 -1 if getattr(quota, m) is None else getattr(quota, m))
                           for m in ("cores", "ram", "instances")]
        return usages

    def _quota_or_error(self, project) -> Any:
        try:
            return self.conn.compute.get_quota_set(project.id, usage=True)
        except Exception as err:
            return err

    def service_health(self) -> dict[str, str]:
        """"ok" or "down: why" per API, and per compute and volume agent as the cloud itself
        lists them (a dead nova-compute leaves the API answering while servers go to ERROR).
        Without Keystone nothing else can be asked: then identity alone is reported."""
        try:
            self.conn.authorize()
        except Exception as err:
            return {"identity": _down(err)}
        health = {"identity": "ok"}
        with ThreadPoolExecutor(PARALLEL) as pool:
            health.update(zip(ENDPOINTS, pool.map(self._probe, ENDPOINTS), strict=True))
            listers = {"compute": lambda: self.conn.compute.services(),
                       "block-storage": lambda: self.conn.block_storage.services()}
            asked = [s for s in listers if health[s] == "ok"]
            for found in pool.map(lambda s: self._agents(s, listers[s]), asked):
                health.update(found)
        return health

    def _probe(self, service: str) -> str:
        try:
            answer = self.conn.session.get(self.conn.endpoint_for(service),
                                           timeout=PROBE_TIMEOUT_S, raise_exc=False)
        except Exception as err:
            return _down(err)
        return "ok" if answer.status_code < 500 else f"down: HTTP {answer.status_code}"

    @staticmethod
    def _agents(service: str, lister: Callable[[], Any]) -> dict[str, str]:
        """`service/binary@host` for every enabled agent (os-services): an agent an operator
        disabled is out of service on purpose, not down."""
        try:
            agents = list(lister())
        except Exception as err:
            return {f"{service}/agents": _down(err)}
        return {f"{service}/{a.binary}@{a.host}":
                "ok" if a.state == "up" else
                f"down: reported down by the cloud (last report {a.updated_at})"
                for a in agents if a.status != "disabled"}
