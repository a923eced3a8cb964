"""Bodies of the network page's routes (issue 20 item 2, network/)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cityops.wire import Identifier

PortKey = Field(pattern=r"^[a-z_]+[0-9]+$", max_length=64, examples=["port1", "if2"],
                description="the port's key in its device's points (port3 of port3.oper_up)")


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device_a: Identifier
    port_a: str = PortKey
    device_b: Identifier
    port_b: str = PortKey
    note: str = Field("", max_length=500)


class Link(BaseModel):
    id: int
    device_a: str
    port_a: str
    device_b: str
    port_b: str
    note: str
    created_by: str | None = None
    created_at: datetime | None = None


class LinkEnd(BaseModel):
    device: str
    port: str
    name: str | None
    oper_up: bool | None
    speed_mbps: float | None
    in_bps: float | None
    out_bps: float | None
    utilisation: float | None = Field(description="max(in_bps, out_bps) / (speed_mbps * 1e6)")


class TopologyLink(BaseModel):
    id: int | None = Field(description="the declaration's id (null: from LLDP only)")
    source: Literal["lldp", "declared"]
    note: str
    a: LinkEnd
    b: LinkEnd
    utilisation: float | None = Field(description="the larger of the two ends'")
    down: bool


class Node(BaseModel):
    id: str
    title: str
    profile: str
    site: str | None
    department: str | None
    state: str | None = Field(description="the agent's word: online, offline, unknown")
    status: Literal["ok", "degraded", "offline", "unknown"]
    sys_name: str | None
    cpu_load_pct: float | None
    memory_used_pct: float | None
    temperature_c: float | None
    links_down: int | None
    open_alarms: int
    ports: int


class PortAlarm(BaseModel):
    id: int
    rule: str
    severity: str
    state: str
    message: str
    first_seen_at: datetime
    point: str | None
    port: str | None


class DownPort(BaseModel):
    device: str
    title: str
    port: str
    name: str | None
    alarms: list[PortAlarm]


class Topology(BaseModel):
    nodes: list[Node]
    links: list[TopologyLink]
    down_ports: list[DownPort]


class Port(BaseModel):
    port: str
    index: int
    name: str | None = None
    oper_up: bool | None = None
    admin_up: bool | None = None
    speed_mbps: float | None = None
    in_bps: float | None = None
    out_bps: float | None = None
    in_errors_ps: float | None = None
    out_errors_ps: float | None = None
    in_discards_ps: float | None = None
    out_discards_ps: float | None = None
    neighbor: str | None = None
    neighbor_port: str | None = None
    utilisation: float | None = None
    down: bool
    alarms: list[PortAlarm]


class PortTable(BaseModel):
    device: str
    title: str
    state: str | None
    ports: list[Port] = Field(description="history of a column: GET /v1/devices/{device}/"
                              "readings?point=<port>.in_bps&bucket=1m")
    device_alarms: list[PortAlarm]
