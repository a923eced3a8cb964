"""Networks on a project-scoped openstacksdk connection, for openstack_provider.py.

No openstack import here. A network is five things made one after another (network, subnet,
router with its gateway outside, the router's interface on the subnet); each is checked and
made if missing, so a worker killed between any two steps leaves a state the retry completes
instead of a network that "exists" with an unrouted subnet.
"""

from __future__ import annotations

from collections.abc import Callable

from cityops.errors import Conflict
from cloud_control.openstack_servers import oldest_first
from cloud_control.provider import NetworkSpec


def first(found) -> object | None:
    """Of several same-named resources, always the same one (the oldest)."""
    ordered = oldest_first(found)
    return ordered[0] if ordered else None


def ensure(pc, spec: NetworkSpec, external: Callable[[], object]) -> tuple:
    """(network, subnet, router or None) as the cloud holds them afterwards."""
    net = first(pc.network.networks(name=spec.name, project_id=pc.current_project_id))
    if net is None:
        net = pc.network.create_network(name=spec.name)
    subnet_name = f"{spec.name}-subnet"
    subnet = first(pc.network.subnets(name=subnet_name, network_id=net.id))
    if subnet is None:
        subnet = pc.network.create_subnet(network_id=net.id, name=subnet_name, ip_version=4,
                                          cidr=spec.cidr)
    if subnet.cidr != spec.cidr:
        # Neutron cannot change a subnet's range: say so rather than report success
        raise Conflict(f"network {spec.name} in {spec.project} has subnet {subnet.cidr} in "
                       f"the cloud, not {spec.cidr}: delete the network first or ask for "
                       "its range")
    router = converge_router(pc, f"{spec.name}-router", subnet, spec.external_access,
                             external)
    return net, subnet, router


def converge_router(pc, name: str, subnet, wanted: bool, external: Callable[[], object]):
    """Floating IPs reach a subnet only through a router to the external network; with
    external_access false, the network's own router is taken off the subnet."""
    router = first(pc.network.routers(name=name, project_id=pc.current_project_id))
    if router is None and not wanted:
        return None
    on_subnet = router is not None and any(
        ip.get("subnet_id") == subnet.id
        for port in pc.network.ports(device_id=router.id) for ip in port.fixed_ips or [])
    if not wanted:
        if on_subnet:
            pc.network.remove_interface_from_router(router, subnet_id=subnet.id)
        return None
    if router is None or not router.external_gateway_info:
        gateway = {"network_id": external().id}
        router = (pc.network.create_router(name=name, external_gateway_info=gateway)
                  if router is None
                  else pc.network.update_router(router, external_gateway_info=gateway))
    if not on_subnet:
        pc.network.add_interface_to_router(router, subnet_id=subnet.id)
    return router
