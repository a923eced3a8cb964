"""Opening an OPC-UA session: the client's settings, the agent's certificate, and why a
connect failed in words an operator can act on.

Sessions ask for `session_timeout_s` (not the library's hour), so a session the agent could
not close (crash, kill -9, lost network) frees its slot on the server soon. While a session is
open asyncua keeps its token in `session_file` (0600, removed on disconnect), so the next run
can take that session back and close it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto import security_policies

from cityops.errors import DeviceAuthRefused, DeviceConfigInvalid, DeviceError, DeviceUnreachable
from edge_agents.drivers.opcua import certs
from edge_agents.drivers.opcua.codec import AUTH_REFUSALS, status_name
from edge_agents.drivers.opcua.config import OpcUaEndpoint


def new_client(ep: OpcUaEndpoint, timeout_s: float, session_file: Path | None) -> Client:
    client = Client(ep.url, timeout=timeout_s, watchdog_intervall=ep.watchdog_interval_s)
    client.application_uri = ep.application_uri
    client.session_timeout = ep.session_timeout_s * 1000
    client.session_state_path = session_file
    if ep.username:
        client.set_user(ep.username)
        password = ep.password()
        if password:
            client.set_password(password)
    return client


def saved_token(session_file: Path | None) -> str | None:
    """The token of the session a previous run left open, if it saved one."""
    if session_file is None:
        return None
    try:
        return json.loads(session_file.read_text())["authentication_token"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


async def secure(client: Client, ep: OpcUaEndpoint) -> None:
    assert ep.certificate is not None and ep.private_key is not None
    # the agent's own certificate: supplied, or made once (self-signed) when both files are
    # missing; never replaced (certs.py)
    pair = await asyncio.to_thread(certs.load_or_create, ep.certificate, ep.private_key,
                                   ep.application_uri)
    server = None
    if ep.server_certificate is not None:
        server = await asyncio.to_thread(certs.certificate_der, ep.server_certificate)
    await client.set_security(
        security_policies.SecurityPolicyBasic256Sha256,
        certificate=pair.certificate_der,
        private_key=pair.private_key_der,
        server_certificate=server,
        mode=getattr(ua.MessageSecurityMode, ep.security_mode),
    )


def connect_error(err: Exception, where: str, ep: OpcUaEndpoint) -> DeviceError:
    """Why the session could not be opened; refusals that only an operator can fix are
    retried every `auth_retry_s`, not hammered."""
    slow = {"retry_after_s": ep.auth_retry_s}
    status = status_name(err)
    if isinstance(err, DeviceConfigInvalid):
        return DeviceConfigInvalid(f"{where}: {err.detail}", **slow)
    if status in AUTH_REFUSALS:
        who = f"user {ep.username!r}" if ep.username else "anonymous"
        return DeviceAuthRefused(f"{where} refused {who} or the agent's certificate: {status}",
                                 status=status, **slow)
    if isinstance(err, AssertionError):
        # a server refusing OpenSecureChannel answers with a ServiceFault, which asyncua cannot
        # parse there: node-opcua sends BadSecurityChecksFailed for a client certificate it
        # does not trust (tests/interop), so with security on that is the likely cause
        if ep.security_policy == "None":
            return DeviceUnreachable(f"{where} refused to open a secure channel (its answer "
                                     "could not be read)")
        return DeviceAuthRefused(
            f"{where} refused the secure channel: most likely it does not trust the agent's "
            f"certificate {ep.certificate} (node-opcua answers BadSecurityChecksFailed and keeps "
            "it in its pki/rejected folder); its administrator trusts it", **slow)
    if status == "BadTooManySessions":
        return DeviceUnreachable(
            f"{where}: the server has no free session (BadTooManySessions); sessions "
            "abandoned by clients end after their timeout", status=status)
    return DeviceUnreachable(f"cannot connect to {where}: {err!r}")
