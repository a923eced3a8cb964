"""What the platform asks of a cloud, in its own words; openstack_provider.py answers it.

Create operations are idempotent by name within a project: a job retried after a worker
restart finds what the first attempt made instead of making a second one, and completes
whatever step the first attempt was killed at. Results are what the cloud holds afterwards
(never the request echoed back); deletions return the ids they removed. Where duplicates
by name exist anyway, the oldest is the one managed and the others are named in the result.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Annotated, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from cityops.wire import Identifier


class Quotas(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cores: int | None = Field(None, ge=0)
    ram_mb: int | None = Field(None, ge=0)
    instances: int | None = Field(None, ge=0)
    volumes: int | None = Field(None, ge=0)
    gigabytes: int | None = Field(None, ge=0)
    floating_ips: int | None = Field(None, ge=0)
    networks: int | None = Field(None, ge=0)


class ProjectSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Identifier
    department: Identifier | None = None
    description: str = ""
    quotas: Quotas = Quotas()


def _subnet(value: str) -> str:
    """An IPv4 network as the cloud will hold it: a host address with a prefix
    (10.20.0.5/24) would be stored as its network, and a retry would then see a different
    subnet; a /31 or /32 leaves no address for the gateway and a server."""
    try:
        network = ipaddress.IPv4Network(value, strict=False)
    except ValueError as err:
        raise ValueError(f"{value!r} is not an IPv4 network: {err}") from err
    if str(network) != value:
        raise ValueError(f"{value!r} has host bits set: the network is {network}")
    if network.prefixlen > 30:
        raise ValueError(f"{value!r} leaves no room for a gateway and servers: at most /30")
    return value


class NetworkSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: Identifier
    name: Identifier
    cidr: Annotated[str, Field(pattern=r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$"),
                    AfterValidator(_subnet)] = "10.20.0.0/24"
    external_access: bool = Field(True, description="a router to the external network")


class ServerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: Identifier
    name: Identifier
    flavor: str
    image: str
    network: str
    key_name: str | None = None
    security_groups: list[str] = []
    user_data: str | None = Field(None, max_length=65535)
    metadata: dict[str, str] = {}


class VolumeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: Identifier
    name: Identifier
    size_gb: int = Field(ge=1, le=16384)


@dataclass(frozen=True)
class Resource:
    """One thing in the cloud, as the inventory records it."""

    kind: str  # server, volume, network, floating_ip, project
    id: str
    name: str
    project: str
    status: str
    attributes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Usage:
    """How much of something is used out of what is allowed (-1: unlimited)."""

    scope: str  # "hypervisor" or a project name
    metric: str  # vcpus, ram_mb, disk_gb, instances, cores, volumes, gigabytes
    used: float
    limit: float


class Provider(Protocol):
    def ensure_project(self, spec: ProjectSpec) -> Resource: ...
    def flavors(self) -> list[dict]: ...
    def images(self) -> list[dict]: ...
    def ensure_network(self, spec: NetworkSpec) -> Resource: ...
    def ensure_server(self, spec: ServerSpec, timeout_s: float = 300) -> Resource: ...
    def server(self, project: str, name: str) -> Resource: ...
    def server_action(self, project: str, name: str, action: str, flavor: str | None = None,
                      timeout_s: float = 300) -> Resource: ...
    def delete_server(self, project: str, name: str, timeout_s: float = 300) -> list[str]: ...
    def ensure_volume(self, spec: VolumeSpec, timeout_s: float = 300) -> Resource: ...
    def attach_volume(self, project: str, server: str, volume: str,
                      timeout_s: float = 300) -> Resource: ...
    def detach_volume(self, project: str, server: str, volume: str,
                      timeout_s: float = 300) -> Resource: ...
    def delete_volume(self, project: str, name: str, timeout_s: float = 300) -> list[str]: ...
    def ensure_floating_ip(self, project: str, server: str) -> Resource: ...
    def inventory(self) -> list[Resource]: ...
    def project_names(self) -> dict[str, str]: ...
    def inventory_part(self, kind: str, names: dict[str, str]) -> list[Resource]: ...
    def release_floating_ips(self, project: str, server: str) -> list[str]: ...
    def delete_floating_ip(self, project: str, address: str) -> list[str]: ...
    def delete_router(self, project: str, name: str) -> list[str]: ...
    def delete_subnet(self, project: str, name: str) -> list[str]: ...
    def delete_network(self, project: str, name: str) -> list[str]: ...
    def delete_project(self, project: str) -> list[str]: ...
    def capacity(self) -> list[Usage]: ...
    def service_health(self) -> dict[str, str]: ...
