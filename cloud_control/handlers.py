"""What each kind of job does. Handlers run in a worker thread (openstacksdk and
ansible-runner are synchronous) and report progress through `Context.report`."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from cityops.errors import ConfigError
from cityops.settings import Settings
from cityops.wire import Identifier
from cloud_control.locks import lock_key, resources_locked
from cloud_control.provider import NetworkSpec, ProjectSpec, Provider, ServerSpec, VolumeSpec


@dataclass
class Context:
    settings: Settings
    report: Callable[..., None]
    _provider: Provider | None = field(default=None, repr=False)

    @property
    def provider(self) -> Provider:
        if self._provider is None:
            self._provider = _shared_provider(self.settings)
        return self._provider

    @contextlib.contextmanager
    def locked(self, *refs: tuple[str, str, str]) -> Iterator[None]:
        """One job at a time per (kind, project, name) in this cloud (cloud_control/locks.py):
        two identical creates at once would otherwise both make one."""
        keys = [lock_key(self.settings.cloud_name, project, kind, name)
                for kind, project, name in refs]
        with resources_locked(self.settings.database_url.get_secret_value(), keys,
                              lambda key: self.report(f"waiting for another job on {key}")):
            yield


# A new provider per job costs two Keystone tokens and a version discovery per service
# (measured 8-10 s a job on the loaded 2-core lab, 0.1-0.6 s a request after): jobs of one
# process share one per cloud (keystoneauth locks its re-authentication; a connection is
# used by several threads as the monitor does). Renewed after PROVIDER_TTL_S, so a project
# deleted and made again outside CityOps is picked up; a changed clouds.yaml at once.
PROVIDER_TTL_S = 300
_providers: dict[tuple[str, str, str], tuple[float, Provider]] = {}
_providers_lock = threading.Lock()


def _file_digest(path: Path | None) -> str:
    """A rewritten clouds.yaml (a new endpoint, a new password) takes effect at the next job."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() if path else ""
    except OSError:
        return ""


def _shared_provider(settings: Settings) -> Provider:
    from cloud_control.openstack_provider import OpenStackProvider

    key = (settings.cloud_name, str(settings.clouds_yaml), _file_digest(settings.clouds_yaml))
    with _providers_lock:
        made, provider = _providers.get(key, (0.0, None))
        if provider is None or time.monotonic() - made > PROVIDER_TTL_S:
            provider = OpenStackProvider(settings.cloud_name, settings.clouds_yaml)
            for older in [k for k in _providers if k[:2] == key[:2]]:
                del _providers[older]  # the same cloud from a file since rewritten
            _providers[key] = (time.monotonic(), provider)
        return provider


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerRef(_Params):
    project: Identifier
    name: Identifier


class ServerAction(ServerRef):
    action: Literal["start", "stop", "reboot", "resize"]
    flavor: str | None = Field(None, validate_default=True)

    @field_validator("flavor")
    @classmethod
    def _flavor_with_resize_only(cls, flavor: str | None, info: ValidationInfo) -> str | None:
        action = info.data.get("action")
        if action == "resize" and not flavor:
            raise ValueError("resize needs the flavor to resize to")
        if action not in (None, "resize") and flavor:
            raise ValueError(f"a flavor goes only with resize, not {action}")
        return flavor


class VolumeAttachment(_Params):
    project: Identifier
    server: Identifier
    volume: Identifier


class VolumeRef(_Params):
    project: Identifier
    name: Identifier


class PlaybookRun(_Params):
    playbook: Literal["edge_gateway.yml", "hardening.yml", "ingest_worker.yml", "site.yml"]
    servers: list[ServerRef] = Field(min_length=1, max_length=500)
    variables: dict[str, Any] = Field(default_factory=dict, description="never secrets")


class ProvisionAndConfigure(_Params):
    server: ServerSpec
    playbook: Literal["edge_gateway.yml", "hardening.yml", "ingest_worker.yml", "site.yml"]
    variables: dict[str, Any] = Field(default_factory=dict)


def _resource(r: Any) -> dict:
    return {"kind": r.kind, "id": r.id, "name": r.name, "project": r.project,
            "status": r.status, "attributes": r.attributes}


def _noted(ctx: Context, r: Any) -> dict:
    """The cloud's record, with what a person should know said in the job's events too."""
    attrs = r.attributes
    if attrs.get("duplicates"):
        ctx.report(f"{len(attrs['duplicates']) + 1} {r.kind}s are named {r.name} in "
                   f"{r.project}: CityOps manages the oldest ({r.id}); remove the others "
                   f"({', '.join(attrs['duplicates'])})")
    for fault in attrs.get("replaced_failed") or []:
        ctx.report(f"deleted server {r.name} left in ERROR by a failed create ({fault}) "
                   "and made it again")
    for note in attrs.get("repaired") or []:
        ctx.report(note)
    return _resource(r)


def project_ensure(ctx: Context, spec: ProjectSpec) -> dict:
    ctx.report(f"ensuring project {spec.name}", progress=10)
    with ctx.locked(("project", spec.name, spec.name)):
        return _resource(ctx.provider.ensure_project(spec))


def network_ensure(ctx: Context, spec: NetworkSpec) -> dict:
    ctx.report(f"ensuring network {spec.name} in {spec.project}", progress=10)
    with ctx.locked(("network", spec.project, spec.name)):
        return _resource(ctx.provider.ensure_network(spec))


def _ensure_server(ctx: Context, spec: ServerSpec) -> Any:
    ctx.report(f"creating server {spec.name} in {spec.project} (or finding it)", progress=10)
    with ctx.locked(("server", spec.project, spec.name)):
        server = ctx.provider.ensure_server(spec)
    ctx.report(f"server {spec.name} is {server.status}", progress=40)
    if server.attributes.get("flavor") not in (None, spec.flavor):
        # an existing server is found, not remade: say where it differs from the request
        ctx.report(f"server {spec.name} exists with flavor {server.attributes['flavor']}, "
                   f"not {spec.flavor}: left as it is (resize it with server.action)")
    return server


def server_ensure(ctx: Context, spec: ServerSpec) -> dict:
    return _noted(ctx, _ensure_server(ctx, spec))


def server_action(ctx: Context, p: ServerAction) -> dict:
    ctx.report(f"{p.action} server {p.name}", progress=10)
    with ctx.locked(("server", p.project, p.name)):
        return _noted(ctx, ctx.provider.server_action(p.project, p.name, p.action, p.flavor))


def server_delete(ctx: Context, p: ServerRef) -> dict:
    ctx.report(f"deleting server {p.name}", progress=10)
    with ctx.locked(("server", p.project, p.name)):
        ids = ctx.provider.delete_server(p.project, p.name)
    return {"deleted": p.name, "ids": ids, "existed": bool(ids)}


def volume_ensure(ctx: Context, spec: VolumeSpec) -> dict:
    ctx.report(f"ensuring volume {spec.name} ({spec.size_gb} GB)", progress=10)
    with ctx.locked(("volume", spec.project, spec.name)):
        return _noted(ctx, ctx.provider.ensure_volume(spec))


def volume_attach(ctx: Context, p: VolumeAttachment) -> dict:
    ctx.report(f"attaching {p.volume} to {p.server}", progress=10)
    with ctx.locked(("volume", p.project, p.volume), ("server", p.project, p.server)):
        return _resource(ctx.provider.attach_volume(p.project, p.server, p.volume))


def volume_detach(ctx: Context, p: VolumeAttachment) -> dict:
    ctx.report(f"detaching {p.volume} from {p.server}", progress=10)
    with ctx.locked(("volume", p.project, p.volume), ("server", p.project, p.server)):
        return _resource(ctx.provider.detach_volume(p.project, p.server, p.volume))


def volume_delete(ctx: Context, p: VolumeRef) -> dict:
    ctx.report(f"deleting volume {p.name}", progress=10)
    with ctx.locked(("volume", p.project, p.name)):
        ids = ctx.provider.delete_volume(p.project, p.name)
    return {"deleted": p.name, "ids": ids, "existed": bool(ids)}


def floating_ip_ensure(ctx: Context, p: ServerRef) -> dict:
    ctx.report(f"floating IP for {p.name}", progress=10)
    with ctx.locked(("floating_ip", p.project, p.name)):
        return _resource(ctx.provider.ensure_floating_ip(p.project, p.name))


def ssh_key_file(settings: Settings) -> Path:
    path = settings.ansible_ssh_key_file or settings.state_dir / "ssh" / "id_ed25519"
    if not path.is_file():
        raise ConfigError(f"no SSH key for Ansible at {path}: run `cityops worker` once, "
                          "or set CITYOPS_ANSIBLE_SSH_KEY_FILE")
    return path


def playbook_run(ctx: Context, p: PlaybookRun) -> dict:
    from cloud_control.configure import configure_servers

    servers = [ctx.provider.server(s.project, s.name) for s in p.servers]
    return configure_servers(ctx, p.playbook, servers, p.variables)


def provision_and_configure(ctx: Context, p: ProvisionAndConfigure) -> dict:
    from cloud_control.configure import configure_servers

    server = _ensure_server(ctx, p.server)
    record = _noted(ctx, server)
    ctx.report(f"configuring server {server.name} with {p.playbook}", progress=45)
    outcome = configure_servers(ctx, p.playbook, [server], p.variables)
    return {"server": record, **outcome}


HANDLERS: dict[str, tuple[type[BaseModel], Callable[[Context, Any], dict]]] = {
    "project.ensure": (ProjectSpec, project_ensure),
    "network.ensure": (NetworkSpec, network_ensure),
    "server.ensure": (ServerSpec, server_ensure),
    "server.action": (ServerAction, server_action),
    "server.delete": (ServerRef, server_delete),
    "volume.ensure": (VolumeSpec, volume_ensure),
    "volume.attach": (VolumeAttachment, volume_attach),
    "volume.detach": (VolumeAttachment, volume_detach),
    "volume.delete": (VolumeRef, volume_delete),
    "floating_ip.ensure": (ServerRef, floating_ip_ensure),
    "playbook.run": (PlaybookRun, playbook_run),
    "server.provision_and_configure": (ProvisionAndConfigure, provision_and_configure),
}
