"""What the agent needs from a driver, and the factory that picks one by protocol.

A driver speaks one protocol to one device. Polled drivers (Modbus, OPC-UA in poll mode)
answer `read()`; push drivers (OPC-UA subscriptions, MQTT) deliver readings through
`subscribe()`, which runs until the connection is lost. Every failure is a DeviceError:
the agent owns the reconnect policy (capped backoff with jitter) and the device's state.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cityops.wire import Value
from edge_agents.points import Method, Reading
from edge_agents.readings import ReadingBlock

if TYPE_CHECKING:
    from edge_agents.config import DeviceConfig

OnReadings = Callable[[list[Reading]], None]


class Driver(Protocol):
    device: str
    profile: Any

    @property
    def pushes(self) -> bool:
        """True when readings arrive through subscribe() rather than read()."""
        ...

    async def connect(self) -> None:
        """Open the session; DeviceUnreachable when the device does not answer."""

    async def close(self) -> None:
        """Release the session; safe to call twice and after a failure."""

    async def read(self) -> list[Reading] | ReadingBlock:
        """Read every point once (a ReadingBlock: the poll column-wise, edge_agents/readings)."""
        ...

    async def subscribe(self, on_readings: OnReadings) -> None:
        """Deliver readings as they change; returns or raises only when the session ends."""

    async def write(self, point: str, value: Value) -> Value:
        """Write one point and return the value read back from the device."""
        ...

    async def call(self, method: Method, args: dict[str, Value]) -> Value | None:
        """Perform a profile method; returns the read-back of what it changed."""
        ...


class DriverFactory:
    """Builds drivers; Modbus devices at one host:port share one connection (one request at a
    time). Vendor libraries are imported only when a device needs them."""

    def __init__(self, gateway: str = "", state_dir: Path | None = None) -> None:
        self.gateway = gateway  # part of stable session ids (MQTT field brokers)
        self.state_dir = state_dir  # OPC-UA session tokens, to close what a crash left open
        self._modbus_connections: dict[tuple[str, int], Any] = {}
        self._snmp_traps: dict[tuple[str, int], Any] = {}  # trap listeners, shared by devices

    def create(self, device: DeviceConfig, profile: Any) -> Driver:
        endpoint = device.endpoint
        if endpoint.protocol == "modbus":
            from edge_agents.drivers.modbus.driver import ModbusConnection, ModbusDriver

            key = (endpoint.host, endpoint.port)
            if key not in self._modbus_connections:
                self._modbus_connections[key] = ModbusConnection(*key, timeout_s=device.timeout_s)
            return ModbusDriver(
                device.id, profile, endpoint, self._modbus_connections[key], device.max_gap
            )
        if endpoint.protocol == "opcua":
            from edge_agents.drivers.opcua.driver import OpcUaDriver

            sessions = self.state_dir / "opcua-sessions" if self.state_dir else None
            return OpcUaDriver(device.id, profile, endpoint, timeout_s=device.timeout_s,
                               poll_interval_s=device.poll_interval_s,
                               session_file=sessions / f"{self.gateway}--{device.id}.json"
                               if sessions else None)
        if endpoint.protocol == "onvif":
            from edge_agents.drivers.onvif.driver import OnvifDriver

            return OnvifDriver(device.id, profile, endpoint, timeout_s=device.timeout_s,
                               poll_interval_s=device.poll_interval_s)
        if endpoint.protocol == "snmp":
            from edge_agents.drivers.snmp.driver import SnmpDriver

            return SnmpDriver(device.id, profile, endpoint, timeout_s=device.timeout_s,
                              poll_interval_s=device.poll_interval_s, traps=self._snmp_traps)
        from edge_agents.drivers.mqtt.driver import MqttDriver

        return MqttDriver(device.id, profile, endpoint, timeout_s=device.timeout_s,
                          gateway=self.gateway)

    def close(self) -> None:
        for conn in self._modbus_connections.values():
            conn.close()
        self._modbus_connections.clear()


def method_values(method: Method, args: dict[str, Value]) -> list[tuple[str, Value]]:
    """The (point, value) writes a method performs with these arguments, in order."""
    values: list[tuple[str, Value]] = []
    for write in method.writes:
        value = args[write.arg] if write.arg is not None else write.value
        assert value is not None  # the profile model guarantees one source
        values.append((write.point, value))
    return values
