"""Traps and informs: one receiver per listening address, shared by the devices that send to it,
each notification handed to the devices whose address it came from and turned into readings
by their profile's `traps` mappings (docs/profiles.md, "SNMP")."""

from __future__ import annotations

import logging
from collections.abc import Callable

from edge_agents.drivers.snmp.client import NotificationReceiver, Varbind
from edge_agents.drivers.snmp.config import TrapListener, TrapMapping

log = logging.getLogger(__name__)

TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"  # snmpTrapOID.0: which notification this is
OnTrap = Callable[[list[Varbind]], None]


class TrapHub:
    """A receiver on one host:port and the devices listening to it, by source address."""

    def __init__(self, host: str, port: int) -> None:
        self.receiver = NotificationReceiver(host, port, self._dispatch)
        self._devices: dict[str, dict[str, OnTrap]] = {}  # source ip -> device id -> callback
        self.received = 0
        self.unclaimed = 0
        self.receiver.start()

    def join(self, device: str, source: str, listener: TrapListener,
             secrets: dict[str, str], on_trap: OnTrap) -> None:
        """Accept this device's community and users (`secrets` holds their keys by name) and
        hand it what comes from `source`."""
        if listener.community is not None:
            self.receiver.add_community(secrets["community"])
        for user in listener.users:
            self.receiver.add_user(user, secrets[f"{user.username}.auth"],
                                   secrets[f"{user.username}.priv"])
        self._devices.setdefault(source, {})[device] = on_trap

    def leave(self, device: str) -> None:
        for devices in self._devices.values():
            devices.pop(device, None)

    @property
    def empty(self) -> bool:
        return not any(self._devices.values())

    def _dispatch(self, source: str, varbinds: list[Varbind]) -> None:
        self.received += 1
        devices = self._devices.get(source, {})
        if not devices:
            self.unclaimed += 1
            log.debug("snmp notification from %s: no device listens for it", source)
        for on_trap in devices.values():
            on_trap(varbinds)

    def close(self) -> None:
        self.receiver.close()


def trap_values(mappings: list[TrapMapping], varbinds: list[Varbind]) -> list[tuple[str, object]]:
    """(point, value) pairs that a notification sets according to the profile."""
    by_oid = {b.oid: b.value for b in varbinds}
    trap = by_oid.get(TRAP_OID)
    if trap is None:
        return []
    found = []
    for mapping in mappings:
        if mapping.trap == trap:
            point = mapping.point_for(by_oid)
            if point is not None:
                found.append((point, mapping.value))
    return found
