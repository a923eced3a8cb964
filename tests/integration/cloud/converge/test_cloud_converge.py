"""Every ensure converges to the declared state from whatever step a killed worker left it
at, and two identical creates at once make one thing (issue #13 items 19 and 20). The
partial states are made with the SDK, as a worker killed between two steps leaves them."""

from __future__ import annotations

import uuid

from tests.helpers import wait_for
from tests.integration.cloud.converge.conftest import Lab


def _routed(pc, network: str) -> bool:
    """The network's subnet has an interface on a router with a gateway outside."""
    [subnet] = pc.network.subnets(name=f"{network}-subnet")
    [router] = pc.network.routers(name=f"{network}-router", project_id=pc.current_project_id)
    ports = pc.network.ports(device_id=router.id)
    return bool(router.external_gateway_info) and any(
        ip["subnet_id"] == subnet.id for p in ports for ip in p.fixed_ips)


def test_network_ensure_completes_every_step_a_kill_can_leave(lab: Lab) -> None:
    pc = lab.sdk()
    external = next(iter(pc.network.networks(is_router_external=True)))
    # killed after the network; after the subnet; after the router (before its interface);
    # a router made without its gateway
    only_net = pc.network.create_network(name="k-net")
    with_subnet = pc.network.create_network(name="k-subnet")
    pc.network.create_subnet(network_id=with_subnet.id, name="k-subnet-subnet",
                             ip_version=4, cidr="10.31.0.0/24")
    for name, cidr, gateway in (("k-router", "10.32.0.0/24", True),
                                ("k-nogw", "10.33.0.0/24", False)):
        net = pc.network.create_network(name=name)
        pc.network.create_subnet(network_id=net.id, name=f"{name}-subnet", ip_version=4,
                                 cidr=cidr)
        pc.network.create_router(name=f"{name}-router", **(
            {"external_gateway_info": {"network_id": external.id}} if gateway else {}))
    for name, cidr in (("k-net", "10.30.0.0/24"), ("k-subnet", "10.31.0.0/24"),
                       ("k-router", "10.32.0.0/24"), ("k-nogw", "10.33.0.0/24")):
        result = lab.ok("network.ensure", name=name, cidr=cidr)
        assert _routed(pc, name), f"{name}: the subnet is not routed after the ensure"
        assert result["attributes"]["cidr"] == cidr and result["attributes"]["external_access"]
    assert len(list(pc.network.networks(name="k-net"))) == 1, only_net

    # the cloud's answer, not the request: a subnet's range cannot change
    other = lab.run("network.ensure", name="k-net", cidr="10.99.0.0/24")
    assert other["state"] == "failed"
    assert "10.30.0.0/24" in other["detail"] and "10.99.0.0/24" in other["detail"]
    # declared without external access: the network's router leaves the subnet
    closed = lab.ok("network.ensure", name="k-subnet", cidr="10.31.0.0/24",
                    external_access=False)
    assert closed["attributes"]["external_access"] is False and not _routed(pc, "k-subnet")


def _pending_resize(lab: Lab, name: str, flavor: str) -> None:
    """A resize the worker started but was killed before confirming."""
    pc = lab.sdk()
    [server] = [s for s in pc.compute.servers(name=name) if s.name == name]
    pc.compute.resize_server(server, pc.compute.find_flavor(flavor).id)
    wait_for(lambda: pc.compute.get_server(server.id).status == "VERIFY_RESIZE",
             timeout_s=200, interval_s=0.3, what=f"{name} to wait in VERIFY_RESIZE")


def test_interrupted_resize_is_confirmed_or_reverted(lab: Lab) -> None:
    _pending_resize(lab, "a", "m1.small")
    done = lab.ok("server.action", name="a", action="resize", flavor="m1.small")
    assert (done["status"], done["attributes"]["flavor"]) == ("ACTIVE", "m1.small")
    # pending resize to another flavor than asked: reverted, and the asked one holds
    _pending_resize(lab, "a", "m1.tiny")
    back = lab.ok("server.action", name="a", action="resize", flavor="m1.small")
    assert (back["status"], back["attributes"]["flavor"]) == ("ACTIVE", "m1.small")


def test_actions_finish_a_pending_resize_and_are_idempotent(lab: Lab) -> None:
    # any other action first finishes the pending resize the way CityOps would have
    _pending_resize(lab, "a", "m1.tiny")
    stopped = lab.ok("server.action", name="a", action="stop")
    assert (stopped["status"], stopped["attributes"]["flavor"]) == ("SHUTOFF", "m1.tiny")
    assert lab.ok("server.action", name="a", action="stop")["status"] == "SHUTOFF"
    assert lab.ok("server.action", name="a", action="start")["status"] == "ACTIVE"
    # reboot of a stopped server starts it; a running one reboots
    lab.ok("server.action", name="b", action="stop")
    assert lab.ok("server.action", name="b", action="reboot")["status"] == "ACTIVE"


def test_failed_create_is_replaced_on_retry(lab: Lab) -> None:
    provider = lab.provider
    admin = provider.conn.compute
    # a flavor whose disk no hypervisor of the lab has: the scheduler puts the server in ERROR
    flavor = admin.create_flavor(name=f"t-nohost-{uuid.uuid4().hex[:6]}", vcpus=1, ram=64,
                                 disk=100000, is_public=False)
    try:
        admin.flavor_add_tenant_access(flavor, lab.sdk(provider).current_project_id)
        spec = {"name": "phoenix", "image": "cirros", "network": "net"}
        first = lab.run("server.ensure", flavor=flavor.name, **spec)
        assert first["state"] == "failed" and "No valid host" in first["detail"], first
        again = lab.ok("server.ensure", flavor="m1.tiny", **spec)
    finally:
        admin.delete_flavor(flavor)
    assert again["status"] == "ACTIVE"
    assert any("No valid host" in f for f in again["attributes"]["replaced_failed"])
    pc = lab.sdk(provider)
    assert [s.id for s in pc.compute.servers(name="phoenix")] == [again["id"]]


def test_identical_creates_at_once_make_one_server_and_duplicates_are_managed(lab: Lab) -> None:
    spec = {"name": "twin", "flavor": "m1.tiny", "image": "cirros", "network": "net"}
    jobs = lab.run_together("server.ensure", [spec, spec])
    assert [j["state"] for j in jobs] == ["succeeded", "succeeded"], [j["detail"] for j in jobs]
    pc = lab.sdk()
    made = [s.id for s in pc.compute.servers(name="twin")]
    assert len(made) == 1, f"two jobs at once made {len(made)} servers named twin"
    assert {j["result"]["id"] for j in jobs} == set(made)

    # a duplicate made anyway (outside CityOps): the oldest is managed, the other is named
    image = pc.image.find_image("cirros")
    extra = pc.compute.create_server(
        name="twin", flavor_id=pc.compute.find_flavor("m1.tiny").id, image_id=image.id,
        networks=[{"uuid": pc.network.find_network("net", project_id=pc.current_project_id)
                   .id}])
    pc.compute.wait_for_server(extra, wait=120)
    job = lab.run("server.ensure", **spec)
    assert job["state"] == "succeeded", job["detail"]
    assert job["result"]["id"] == made[0] and job["result"]["attributes"]["duplicates"] == [
        extra.id]
    assert any(extra.id in e and "oldest" in e for e in job["events"])
    stopped = lab.ok("server.action", name="twin", action="stop")
    assert stopped["id"] == made[0] and stopped["status"] == "SHUTOFF"
    assert pc.compute.get_server(extra.id).status == "ACTIVE", "only the managed one stops"
    gone = lab.ok("server.delete", name="twin")
    assert sorted(gone["ids"]) == sorted([made[0], extra.id])
    assert not [s for s in pc.compute.servers(name="twin")
                if s.name == "twin" and s.status != "DELETED"]
