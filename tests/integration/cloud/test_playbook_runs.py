"""Playbook runs: refused before Ansible starts when a server has no SSH endpoint the operator
configured (the lab's servers have 10.x addresses that exist on no machine); the wheelhouse
built only for playbooks that install the platform, and cached layer by layer."""

from __future__ import annotations

import os
import tarfile

import pytest

from cityops.errors import Conflict
from cloud_control.configure import configure_servers, host_of, ssh_networks
from cloud_control.handlers import Context, PlaybookRun, ServerRef, playbook_run
from cloud_control.playbooks import needs_wheelhouse, wheelhouse_extras
from cloud_control.provider import NetworkSpec, ProjectSpec, Resource, ServerSpec
from cloud_control.wheelhouse import build_wheelhouse


def test_a_server_without_a_configured_endpoint_is_refused_before_ansible(
        cloud_settings, project, tmp_path) -> None:
    settings = cloud_settings.model_copy(update={"wheelhouse_dir": tmp_path / "wheels"})
    events: list[dict] = []
    ctx = Context(settings=settings, report=lambda *a, **k: events.append(k))
    provider = ctx.provider
    provider.ensure_project(ProjectSpec(name=project))
    provider.ensure_network(NetworkSpec(project=project, name="net", external_access=False))
    server = provider.ensure_server(ServerSpec(project=project, name="s1", flavor="m1.tiny",
                                               image="cirros", network="net"))
    [address] = server.attributes["addresses"]
    with pytest.raises(Conflict, match="no SSH endpoint") as refused:
        playbook_run(ctx, PlaybookRun(playbook="edge_gateway.yml",
                                      servers=[ServerRef(project=project, name="s1")]))
    assert address in refused.value.detail and "cityops_ssh" in refused.value.detail
    assert not [e for e in events if e.get("host")], "Ansible never started"
    assert not (tmp_path / "wheels").exists(), "nothing was built for a refused run"
    # the operator names the network the worker reaches: then that address is used
    own = settings.model_copy(update={"ansible_ssh_networks": [f"{address}/32"]})
    assert host_of(server, "hardening.yml", ssh_networks(own)).address == address


def test_only_playbooks_that_install_the_platform_get_a_wheelhouse(
        cloud_settings, ssh_hosts, tmp_path) -> None:
    assert [needs_wheelhouse(p) for p in ("hardening.yml", "edge_gateway.yml",
                                          "ingest_worker.yml", "site.yml")] == \
        [False, True, True, True]
    # a gateway installs the core only; a playbook with any server role, the server extra
    assert [wheelhouse_extras(p) for p in ("edge_gateway.yml", "ingest_worker.yml",
                                           "site.yml")] == [(), ("server",), ("server",)]
    [target] = ssh_hosts(1)
    server = Resource("server", "id-1", "hardened", "p", "ACTIVE", {"metadata": {
        "cityops_ssh": f"127.0.0.1:{target.host.port}",
        "cityops_prefix": str(target.prefix)}})
    settings = cloud_settings.model_copy(update={"wheelhouse_dir": tmp_path / "wheels"})
    ctx = Context(settings=settings, report=lambda *a, **k: None)
    outcome = configure_servers(ctx, "hardening.yml", [server],
                                {"hardening_manage_packages": False})
    assert outcome["hosts"] == ["hardened"]
    assert (target.prefix / "etc/ssh/sshd_config.d/50-cityops-hardening.conf").is_file()
    assert not (tmp_path / "wheels").exists(), "hardening installs nothing of the platform"


def _tiny_project(root, version: int) -> None:
    (root / "tinypkg").mkdir(parents=True, exist_ok=True)
    (root / "tinypkg" / "__init__.py").write_text(f"VERSION = {version}\n")
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "tinypkg"\nversion = "1.0"\ndependencies = ["idna"]\n'
        '[tool.setuptools.packages.find]\ninclude = ["tinypkg*"]\n')


def test_the_wheelhouse_is_rebuilt_only_where_its_inputs_changed(tmp_path) -> None:
    repo, cache = tmp_path / "repo", tmp_path / "cache"
    _tiny_project(repo, 1)
    first = build_wheelhouse(cache, repo)
    with tarfile.open(first) as tar:
        names = sorted(n.split("-")[0] for n in tar.getnames())
    assert names == ["wheelhouse/idna", "wheelhouse/tinypkg"]
    [dep] = cache.glob("deps-*/idna-*.whl")
    dep_stamp, first_stamp = dep.stat().st_mtime_ns, first.stat().st_mtime_ns
    assert build_wheelhouse(cache, repo) == first
    assert first.stat().st_mtime_ns == first_stamp, "unchanged inputs: nothing rebuilt"
    _tiny_project(repo, 2)  # the platform's source changed, its dependencies did not
    second = build_wheelhouse(cache, repo)
    assert second != first and not first.exists(), "the old archive is pruned"
    assert dep.stat().st_mtime_ns == dep_stamp, "the dependency wheels were reused"
    assert os.path.getsize(second) > 0
