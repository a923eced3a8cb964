"""Gateway subscriptions and client ids, enforced by Mosquitto's dynamic-security plugin.

Mosquitto 2.0's ACL file never refuses a subscription (src/security_default.c answers every
subscribe check with success and filters at delivery instead). For a shared subscription that
is a loss, not a filter: a gateway that joins `$share/ingest/...` with its own credentials is
given its turn of every gateway's telemetry, the delivery check then drops the message, and the
publishing agent already has its PUBACK (issue #22). It also lets any account connect with any
client id, so one gateway could knock another (or an ingest worker's persistent session) off.

The dynamic-security plugin, shipped with Mosquitto 2.0, checks subscriptions (the whole
filter, `$share/<group>/` included) and can bind an account to one client id. It is used only
for that: every gateway is a dynsec client without a password, with client id
`agent-<gateway>` and a role allowing subscriptions to its own topics and refusing all others.
Passwords and publish/receive rules stay in the password file and ACL (render_password_file,
render_acl): dynsec defers whatever it does not decide, and service accounts are not in it.

The plugin reads its file only at start; a running broker is changed through
`$CONTROL/dynamic-security/v1` by the `svc-broker` account (`sync`).
"""

from __future__ import annotations

import json
import queue
import secrets
import uuid
from collections.abc import Mapping
from pathlib import Path

import paho.mqtt.client as paho

from cityops import wire
from cityops.errors import StackError
from infra.broker.accounts import GATEWAY_RULES, Account

PLUGIN_PATHS = (
    Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"),
    Path("/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so"),
    Path("/usr/lib/mosquitto_dynamic_security.so"),
)
CONFIG_FILE = "dynamic-security.json"
ADMIN = "svc-broker"
_ADMIN_FILE = "broker-admin.secret"
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"


def plugin_path() -> Path:
    for path in PLUGIN_PATHS:
        if path.exists():
            return path
    raise StackError("Mosquitto's dynamic-security plugin is missing (Debian: it comes with "
                     f"the mosquitto package), looked in {[str(p) for p in PLUGIN_PATHS]}")


def role_name(gateway: str) -> str:
    return f"gateway-{gateway}"


def gateway_role(gateway: str, topic_root: str) -> dict:
    """Subscribe to its own read topics (as the ACL file's rules), nothing else: the last,
    lowest-priority pattern `#` also matches `$share/...` and `$SYS/...` filters."""
    acls = [{"acltype": "subscribePattern", "topic": f"{topic_root}/{t.format(gw=gateway)}",
             "priority": 10, "allow": True}
            for access, t in GATEWAY_RULES if access == "read"]
    acls.append({"acltype": "subscribePattern", "topic": "#", "priority": 0, "allow": False})
    return {"rolename": role_name(gateway), "acls": acls}


def gateway_client(gateway: str) -> dict:
    return {"username": gateway, "clientid": wire.gateway_client_id(gateway),
            "roles": [{"rolename": role_name(gateway), "priority": 0}]}


def _gateways(accounts: Mapping[str, Account]) -> list[str]:
    return sorted(n for n, a in accounts.items() if a.kind == "gateway" and not a.revoked)


def render_config(accounts: Mapping[str, Account], topic_root: str) -> str:
    """The plugin's file. Default access: decide nothing, so publishing and receiving fall
    through to the ACL file; unsubscribing is always allowed."""
    gateways = _gateways(accounts)
    body = {
        "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False,
                             "subscribe": False, "unsubscribe": True},
        "clients": [gateway_client(g) for g in gateways],
        "groups": [],
        "roles": [gateway_role(g, topic_root) for g in gateways],
    }
    return json.dumps(body, indent=2) + "\n"


def admin_password(state_dir: Path) -> str:
    """The `svc-broker` password, made on first use and kept next to the accounts (0600)."""
    path = state_dir / _ADMIN_FILE
    if not path.exists():
        from infra.broker.accounts import write_private

        write_private(path, secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


class _Control:
    """One admin session on `$CONTROL/dynamic-security/v1`: send commands, await answers."""

    def __init__(self, host: str, port: int, password: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.answers: queue.Queue[dict] = queue.Queue()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5,
                                  client_id=f"{ADMIN}-{uuid.uuid4().hex[:8]}")
        self.client.username_pw_set(ADMIN, password)
        self.client.on_message = lambda _c, _u, msg: self.answers.put(json.loads(msg.payload))
        subscribed: queue.Queue[bool] = queue.Queue()
        self.client.on_subscribe = lambda *_a: subscribed.put(True)
        try:
            self.client.connect(host, port)
        except OSError as err:
            raise StackError(f"cannot reach the broker at {host}:{port}: {err}") from err
        self.client.loop_start()
        self.client.subscribe(RESPONSE_TOPIC, qos=1)
        try:
            subscribed.get(timeout=timeout_s)
        except queue.Empty as err:
            self.close()
            raise StackError("the broker did not let svc-broker subscribe to the answers") from err

    def run(self, commands: list[dict]) -> list[dict]:
        if not commands:
            return []
        self.client.publish(CONTROL_TOPIC, json.dumps({"commands": commands}), qos=1)
        try:
            return self.answers.get(timeout=self.timeout_s)["responses"]
        except queue.Empty as err:
            raise StackError("no answer on $CONTROL/dynamic-security: the running broker was "
                             "started without the dynamic-security plugin; restart it") from err

    def close(self) -> None:
        self.client.disconnect()  # first: the network thread then ends at once
        self.client.loop_stop()


def sync(host: str, port: int, state_dir: Path, accounts: Mapping[str, Account],
         topic_root: str, timeout_s: float = 5.0) -> None:
    """Make the running plugin's gateways those of the accounts: add the new ones, delete the
    revoked ones (which also disconnects them). Existing gateways are left connected."""
    control = _Control(host, port, admin_password(state_dir), timeout_s)
    try:
        listed = control.run([{"command": "listClients", "verbose": False, "count": -1}])
        have = set(listed[0].get("data", {}).get("clients", []))
        want = set(_gateways(accounts))
        commands: list[dict] = []
        for gw in sorted(want - have):
            commands.append({"command": "createRole", **gateway_role(gw, topic_root)})
            commands.append({"command": "createClient", **gateway_client(gw)})
        for gw in sorted(have - want):
            commands += [{"command": "deleteClient", "username": gw},
                         {"command": "deleteRole", "rolename": role_name(gw)}]
        for answer in control.run(commands):
            error = answer.get("error")
            if error and error != "Role already exists":
                raise StackError(f"dynamic-security {answer.get('command')}: {error}")
    finally:
        control.close()
