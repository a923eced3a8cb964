"""Preconditions checked before acting, results from the cloud's answer, and missing things
named (issue #13 item 21), against the real lab."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.cloud.converge.conftest import Lab


def test_volume_in_use_elsewhere_is_refused_and_results_are_the_clouds(lab: Lab) -> None:
    a, b = "a", "b"
    assert lab.ok("volume.ensure", name="v1", size_gb=1)["attributes"]["size_gb"] == 1
    on_a = lab.ok("volume.attach", server=a, volume="v1")
    assert (on_a["status"], on_a["attributes"]["server"]) == ("in-use", a)
    assert lab.ok("volume.attach", server=a, volume="v1")["attributes"]["server"] == a

    to_b = lab.run("volume.attach", server=b, volume="v1")
    assert to_b["state"] == "failed", "a volume in use on a must not be reported attached to b"
    assert "attached to server a, not b" in to_b["detail"]
    from_b = lab.run("volume.detach", server=b, volume="v1")
    assert from_b["state"] == "failed" and "attached to server a, not b" in from_b["detail"]
    busy = lab.run("volume.delete", name="v1")
    assert busy["state"] == "failed" and "detach it first" in busy["detail"]
    # an ensure of an attached volume finds it in use (it used to wait 300 s for available)
    assert lab.ok("volume.ensure", name="v1", size_gb=1)["status"] == "in-use"
    grow = lab.run("volume.ensure", name="v1", size_gb=2)
    assert grow["state"] == "failed" and "only when detached" in grow["detail"]

    off = lab.ok("volume.detach", server=a, volume="v1")
    assert (off["status"], off["attributes"]["server"]) == ("available", None)
    assert lab.ok("volume.detach", server=a, volume="v1")["status"] == "available"
    grown = lab.ok("volume.ensure", name="v1", size_gb=2)
    assert grown["attributes"]["size_gb"] == 2, "an ensure grows a smaller volume"
    shrink = lab.run("volume.ensure", name="v1", size_gb=1)
    assert shrink["state"] == "failed" and "cannot shrink" in shrink["detail"]
    deleted = lab.ok("volume.delete", name="v1")
    assert deleted["existed"] and len(deleted["ids"]) == 1
    assert lab.ok("volume.delete", name="v1")["existed"] is False


def test_floating_ip_is_made_once_and_reported_from_the_cloud(lab: Lab) -> None:
    first = lab.ok("floating_ip.ensure", name="b")
    again = lab.ok("floating_ip.ensure", name="b")
    assert again["id"] == first["id"] and again["attributes"]["server"] == "b"
    assert again["attributes"]["fixed_address"].startswith("10.20.0.")


@pytest.mark.parametrize(("field", "value", "named"), [
    ("flavor", "m9.none", "flavor 'm9.none' not found in the cloud (there are: "),
    ("image", "no-such-image", "image 'no-such-image' not found in the cloud"),
    ("network", "no-such-net", "network 'no-such-net' not found in project"),
])
def test_missing_catalogue_entry_is_named(lab: Lab, field: str, value: str,
                                          named: str) -> None:
    spec = {"name": "never", "flavor": "m1.tiny", "image": "cirros", "network": "net",
            field: value}
    job = lab.run("server.ensure", **spec)
    assert job["state"] == "failed" and named in job["detail"], job["detail"]


def test_missing_project_and_server_are_named(lab: Lab) -> None:
    job = lab.run("server.action", name="ghost", action="stop")
    assert job["state"] == "failed"
    assert f"server 'ghost' not found in project {lab.project}" in job["detail"]
    lab.project, real = "t-nowhere", lab.project
    try:
        job = lab.run("volume.ensure", name="v", size_gb=1)
    finally:
        lab.project = real
    assert job["state"] == "failed" and "project 't-nowhere' not found" in job["detail"]


def test_resize_without_flavor_is_refused_at_submit() -> None:
    from cityops.errors import InvalidInput
    from cloud_control.jobs import validate

    with pytest.raises(InvalidInput, match=r"flavor: .*resize needs the flavor"):
        validate("server.action", {"project": "p", "name": "s", "action": "resize"})
    with pytest.raises(InvalidInput, match=r"flavor: .*only with resize"):
        validate("server.action", {"project": "p", "name": "s", "action": "stop",
                                   "flavor": "m1.small"})


def test_project_results_are_the_clouds_and_a_zero_quota_is_zero(lab: Lab) -> None:
    other = lab.run("project.ensure", name=lab.project, department="roads")
    assert other["state"] == "failed", "another department must not be reported as applied"
    assert "belongs to department water in the cloud, not roads" in other["detail"]
    name = f"t-{uuid.uuid4().hex[:8]}"
    provider = lab.provider
    try:
        made = lab.ok("project.ensure", name=name, quotas={"cores": 0, "instances": 3})
        assert made["attributes"]["department"] is None and made["status"] == "active"
        assert (made["attributes"]["quotas"]["cores"],
                made["attributes"]["quotas"]["instances"]) == (0, 3)
        claimed = lab.ok("project.ensure", name=name, department="roads")
        assert claimed["attributes"]["department"] == "roads"
        limits = {u.metric: u.limit for u in provider.capacity() if u.scope == name}
        assert limits["cores"] == 0, "a quota of 0 is no cores, not unlimited"
        assert limits["instances"] == 3
    finally:
        provider.conn.identity.delete_project(provider.conn.identity.find_project(name))


def test_two_images_of_one_name_are_named_by_id(lab: Lab) -> None:
    pc = lab.sdk()
    name = f"t-twin-image-{uuid.uuid4().hex[:6]}"
    # no data uploaded: records only, enough for the name look-up
    made = [pc.image.create_image(name=name, disk_format="raw", container_format="bare")
            for _ in range(2)]
    try:
        job = lab.run("server.ensure", name="never", flavor="m1.tiny", image=name,
                      network="net")
    finally:
        for image in made:
            pc.image.delete_image(image)
    assert job["state"] == "failed" and f"2 images are named {name!r}" in job["detail"]
    assert all(image.id in job["detail"] for image in made), job["detail"]


def test_existing_server_is_reported_as_the_cloud_has_it(lab: Lab) -> None:
    job = lab.run("server.ensure", name="b", flavor="m1.small", image="cirros", network="net")
    assert job["state"] == "succeeded" and job["result"]["attributes"]["flavor"] == "m1.tiny"
    assert any("exists with flavor m1.tiny, not m1.small" in e for e in job["events"])
