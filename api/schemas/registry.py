"""Bodies of the registry routes: sites, departments, gateways, profiles, devices, points."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from cityops.wire import Identifier

T = TypeVar("T")


def _not_a_service(value: str) -> str:
    if value.startswith("svc-"):
        raise ValueError("svc- is reserved for service accounts")
    return value


# a gateway id is also a broker username and a topic level: lower case, no dots
GatewayId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", examples=["gw-pump-03"],
                                 description="not starting with svc- (service accounts)"),
                      AfterValidator(_not_a_service)]
Latitude = Annotated[float, Field(ge=-90, le=90, examples=[33.9167])]
Longitude = Annotated[float, Field(ge=-180, le=180, examples=[116.7667])]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="how many match the filters, over all pages")
    limit: int
    offset: int


class SiteIn(_In):
    id: Identifier = Field(examples=["command-centre"])
    name: str = Field(min_length=1, max_length=200, examples=["濉溪县城市运行指挥中心"])


class Site(SiteIn):
    created_at: datetime


class DepartmentIn(_In):
    id: Identifier = Field(examples=["water-resources"])
    name: str = Field(min_length=1, max_length=200, examples=["水利局"])


class Department(DepartmentIn):
    created_at: datetime


class GatewayIn(_In):
    id: GatewayId
    name: str = Field("", max_length=200, examples=["Pumping station 3"])
    site: Identifier | None = None
    department: Identifier | None = None


class Gateway(BaseModel):
    id: str
    name: str
    site: str | None
    department: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_status: dict[str, Any] | None = Field(description="the agent's last status message")
    last_seen_at: datetime | None
    config_version: int
    devices: int


class MqttCredentials(BaseModel):
    url: str = Field(examples=["mqtt://127.0.0.1:1884"])
    username: str
    password: str | None = Field(
        description="shown once: it is not stored in readable form. null when registering "
                    "adopted a broker account that exists already (cloud provisioning made "
                    "it): its password is kept; POST /v1/gateways/{id}/credentials issues a "
                    "new one")
    topic_root: str = Field(examples=["cityops/v1/gw-pump-03"])


class GatewayRegistered(BaseModel):
    gateway: Gateway
    mqtt: MqttCredentials


class ProfileSummary(BaseModel):
    id: str = Field(description="the profile's model name")
    protocol: str
    category: str
    title: str
    updated_at: datetime
    devices: int


class ProfileOut(ProfileSummary):
    body: dict[str, Any] = Field(description="the profile as validated (docs/profiles.md)")


class DeviceIn(_In):
    id: Identifier = Field(examples=["pump3-level"])
    title: str = Field("", max_length=200)
    gateway: GatewayId
    profile: Identifier = Field(examples=["power-meter-3ph"])
    address: dict[str, Any] = Field(
        description="where the gateway reaches the device, per protocol "
        "(Modbus: host, port, unit_id)",
        examples=[{"host": "10.20.0.31", "port": 502, "unit_id": 1}],
    )
    site: Identifier | None = None
    department: Identifier | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    poll_interval_s: float = Field(1.0, gt=0, le=86400)
    timeout_s: float = Field(2.0, gt=0, le=60)


class DevicePatch(_In):
    title: str | None = Field(None, max_length=200)
    gateway: GatewayId | None = None
    address: dict[str, Any] | None = None
    site: Identifier | None = None
    department: Identifier | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    poll_interval_s: float | None = Field(None, gt=0, le=86400)
    timeout_s: float | None = Field(None, gt=0, le=60)


class Device(BaseModel):
    id: str
    title: str
    gateway: str
    profile: str
    address: dict[str, Any]
    site: str | None
    department: str | None
    latitude: float | None
    longitude: float | None
    poll_interval_s: float
    timeout_s: float
    created_at: datetime


class Point(BaseModel):
    name: str
    title: str
    unit: str
    data_type: str
    writable: bool


class ImportRow(BaseModel):
    row: int = Field(description="1-based line of the CSV, after the header")
    id: str
    errors: list[str]


class ImportReport(BaseModel):
    imported: int
    devices: list[str]
    encoding: str = Field(description="how the file was read: UTF-8, UTF-8 (with BOM), GBK"
                                      " or UTF-16", examples=["GBK"])
