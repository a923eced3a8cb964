"""Gateway credentials on the broker: the hook onboarding calls to issue and revoke them.

`LocalMosquitto` works on the state dir of a Mosquitto on this host (the local stack's, or a
test's): it updates the accounts store, rewrites the password file and ACL, and sends SIGHUP,
so the broker applies them without a restart (and drops a revoked gateway's connection). A
remote broker needs another implementation of `GatewayCredentials` (docs/api.md).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import re
from pathlib import Path
from typing import Protocol

from cityops.errors import BrokerUnavailable, StackError
from infra.broker import accounts
from infra.broker.certificates import revoke_certificates
from infra.broker.process import Broker

_LISTENER = re.compile(r"^listener\s+(\d+)\s+(\S+)\s*$", re.MULTILINE)


class GatewayCredentials(Protocol):
    async def issue(self, gateway: str) -> str:
        """New credentials (the password, returned once); Conflict if it has some already."""
        ...

    async def revoke(self, gateway: str) -> None:
        """Cut the gateway off: refuse its logins and drop its open connection."""
        ...

    async def state(self, gateway: str) -> str | None:
        """"active", "revoked", or None when the broker has no account for the gateway."""
        ...


class LocalMosquitto:
    def __init__(self, state_dir: Path, topic_root: str) -> None:
        self.state_dir = Path(state_dir)
        self.topic_root = topic_root

    def _broker(self) -> Broker:
        # rewrite the config exactly as it is: same listener, same unprivileged user
        try:
            conf = (self.state_dir / "mosquitto.conf").read_text()
        except OSError as err:
            raise BrokerUnavailable(f"no broker state in {self.state_dir}: {err}") from err
        match = _LISTENER.search(conf)
        if match is None:
            raise BrokerUnavailable(f"{self.state_dir}/mosquitto.conf names no listener")
        owner = self.state_dir.stat().st_uid
        run_as = pwd.getpwuid(owner).pw_name if os.geteuid() == 0 and owner != 0 else None
        return Broker(self.state_dir, int(match[1]), match[2], run_as=run_as,
                      topic_root=self.topic_root)

    def _apply(self, broker: Broker) -> None:
        broker.write_config()
        try:
            broker.reload()
        except StackError as err:
            raise BrokerUnavailable(err.detail) from err

    def _issue(self, gateway: str) -> str:
        broker = self._broker()
        password = accounts.add_gateway(self.state_dir, gateway)
        self._apply(broker)
        return password

    def _revoke(self, gateway: str) -> None:
        broker = self._broker()
        accounts.revoke_gateway(self.state_dir, gateway)
        revoke_certificates(broker, gateway)  # in the CRL: no TLS handshake any more
        self._apply(broker)

    async def issue(self, gateway: str) -> str:
        return await asyncio.to_thread(self._issue, gateway)

    async def revoke(self, gateway: str) -> None:
        await asyncio.to_thread(self._revoke, gateway)

    async def state(self, gateway: str) -> str | None:
        found = (await asyncio.to_thread(accounts.load_accounts, self.state_dir)).get(gateway)
        if found is None or found.kind != "gateway":
            return None
        return "revoked" if found.revoked else "active"
