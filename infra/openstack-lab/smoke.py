#!/usr/bin/env python3
"""End-to-end check of the OpenStack lab through openstacksdk (PyPI's).

    OS_CLOUD=cityops-lab OS_CLIENT_CONFIG_FILE=$(infra/openstack-lab/lab.sh env) \
        python infra/openstack-lab/smoke.py

Works in a throw-away project (a cores quota of 2), cleans up after itself and
exits non-zero on the first failure. Servers are records (fake driver): the
check is about the API life cycle, not about a guest.
"""
import os
import sys
import time
import uuid

import openstack
from openstack import exceptions as exc

TIMEOUT = 120
HOST = "cityops-lab"


def step(msg):
    pass


def wait_until(what, fn, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for " + what)
        time.sleep(0.5)


def settled(conn, server, status):
    """Wait for STATUS with no task running (reboot keeps ACTIVE while rebooting)."""
    def ready():
        s = conn.compute.get_server(server)
        if s.status == "ERROR":
            raise RuntimeError(f"server went to ERROR: {s.fault}")
        return s if s.status == status and not s.task_state else None
    return wait_until(f"server {status}", ready)


def run(admin, cleanup):
    suffix = uuid.uuid4().hex[:8]
    project = admin.identity.create_project(name="smoke-" + suffix, domain_id="default")
    cleanup.append(lambda: admin.identity.delete_project(project))
    # listing by name, not find_*: a GET by id first makes Keystone log a 404 traceback
    user = next(admin.identity.users(name="admin", domain_id="default"))
    role = next(admin.identity.roles(name="admin"))
    admin.identity.assign_project_role_to_user(project, user, role)
    admin.set_compute_quotas(project.id, cores=2)
    conn = admin.connect_as_project({"id": project.id, "name": project.name,
                                     "domain_id": "default"})
    step(f"project {project.name}, cores quota 2")

    net = conn.network.create_network(name="smoke-net")
    cleanup.append(lambda: conn.network.delete_network(net))
    subnet = conn.network.create_subnet(network_id=net.id, ip_version=4,
                                        cidr="10.42.0.0/24", name="smoke-subnet")
    cleanup.append(lambda: conn.network.delete_subnet(subnet))
    public = conn.network.find_network("public", ignore_missing=False)
    router = conn.network.create_router(name="smoke-router",
                                        external_gateway_info={"network_id": public.id})
    cleanup.append(lambda: conn.network.delete_router(router))
    conn.network.add_interface_to_router(router, subnet_id=subnet.id)
    cleanup.append(lambda: conn.network.remove_interface_from_router(router, subnet_id=subnet.id))
    step("network, subnet and router to 'public'")

    image = conn.image.find_image("cirros", ignore_missing=False)
    tiny = conn.compute.find_flavor("m1.tiny", ignore_missing=False)
    small = conn.compute.find_flavor("m1.small", ignore_missing=False)
    t0 = time.monotonic()
    server = conn.compute.create_server(name="smoke-vm", image_id=image.id, flavor_id=tiny.id,
                                        networks=[{"uuid": net.id}])
    # the server's ports must be gone before its network can go
    cleanup.append(lambda: (conn.compute.delete_server(server),
                            conn.compute.wait_for_delete(server, wait=TIMEOUT)))
    server = settled(conn, server, "ACTIVE")
    step(f"server ACTIVE in {time.monotonic() - t0:.1f}s, addresses {dict(server.addresses)}")

    conn.compute.stop_server(server)
    settled(conn, server, "SHUTOFF")
    conn.compute.start_server(server)
    settled(conn, server, "ACTIVE")
    conn.compute.reboot_server(server, "SOFT")
    settled(conn, server, "ACTIVE")
    step("stop, start, reboot")

    conn.compute.resize_server(server, small.id)
    settled(conn, server, "VERIFY_RESIZE")
    conn.compute.confirm_server_resize(server)
    server = settled(conn, server, "ACTIVE")
    assert server.flavor.vcpus == 2, server.flavor
    step("resize to m1.small confirmed")

    try:
        extra = conn.compute.create_server(name="smoke-over", image_id=image.id,
                                           flavor_id=tiny.id, networks=[{"uuid": net.id}])
        cleanup.append(lambda: conn.compute.delete_server(extra))
        raise AssertionError("a third core was granted beyond the quota of 2")
    except exc.HttpException as e:
        assert e.status_code == 403 and "Quota exceeded" in str(e), e
    step("quota: third core refused (403 Quota exceeded)")

    vol = conn.block_storage.create_volume(size=1, name="smoke-vol")
    cleanup.append(lambda: conn.block_storage.delete_volume(vol, ignore_missing=True))
    conn.block_storage.wait_for_status(vol, "available", failures=["error"], wait=TIMEOUT)
    conn.compute.create_volume_attachment(server, volume_id=vol.id)
    conn.block_storage.wait_for_status(vol, "in-use", failures=["error"], wait=TIMEOUT)
    conn.compute.delete_volume_attachment(server, vol)
    conn.block_storage.wait_for_status(vol, "available", failures=["error"], wait=TIMEOUT)
    conn.block_storage.delete_volume(vol)
    conn.block_storage.wait_for_delete(vol, wait=TIMEOUT)
    step("volume created, attached, detached, deleted")

    fip = conn.network.create_ip(floating_network_id=public.id)
    cleanup.append(lambda: conn.network.delete_ip(fip))
    port = next(conn.network.ports(device_id=server.id))
    fip = conn.network.update_ip(fip, port_id=port.id)
    assert fip.port_id == port.id and fip.fixed_ip_address, fip
    step(f"floating IP {fip.floating_ip_address} -> {fip.fixed_ip_address} (status {fip.status}: no L3 agent)")

    snap = conn.compute.create_server_image(server, "smoke-snap", wait=True, timeout=TIMEOUT)
    cleanup.append(lambda: conn.image.delete_image(snap, ignore_missing=True))
    conn.image.wait_for_status(conn.image.get_image(snap), "active", failures=["killed"],
                               wait=TIMEOUT)
    step("snapshot image active")

    stats = admin.compute.get("/os-hypervisors/statistics", microversion="2.87").json()
    stats = stats["hypervisor_statistics"]
    assert stats["vcpus"] >= 2 and stats["vcpus_used"] >= 2, stats
    rp = next(admin.placement.resource_providers(name=HOST))
    usages = admin.placement.get(f"/resource_providers/{rp.id}/usages").json()["usages"]
    assert usages["VCPU"] >= 2, usages
    step("hypervisor %d/%d vCPUs, %d/%d MB used; placement usages %s" % (
        stats["vcpus_used"], stats["vcpus"], stats["memory_mb_used"], stats["memory_mb"],
        usages))

    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=TIMEOUT)
    step("server deleted")


def main():
    admin = openstack.connect(cloud=os.environ.get("OS_CLOUD", "cityops-lab"))
    cleanup = []
    t0 = time.monotonic()
    try:
        run(admin, cleanup)
    except Exception:  # report any failure as one line, then clean up
        return 1
    finally:
        for undo in reversed(cleanup):
            try:
                undo()
            except exc.SDKException:
                pass  # already gone, or its parent took it along
    step("OK in %.1fs" % (time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
