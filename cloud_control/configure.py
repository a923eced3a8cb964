"""Ansible runs against cloud servers: the inventory comes from the servers' records
(and, for edge gateways, the registry), secrets are made at run time and never stored."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from cityops.errors import ConfigError, Conflict
from cityops.settings import Settings
from cloud_control.handlers import Context, ssh_key_file
from cloud_control.playbooks import (
    Host,
    HostEvent,
    needs_wheelhouse,
    run_playbook,
    wheelhouse_extras,
)
from cloud_control.provider import Resource
from cloud_control.wheelhouse import build_wheelhouse

GROUP_OF_PLAYBOOK = {"edge_gateway.yml": "edge_gateways", "ingest_worker.yml": "ingest_workers"}


def ssh_networks(settings: Settings) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    try:
        return [ipaddress.ip_network(n) for n in settings.ansible_ssh_networks]
    except ValueError as err:
        raise ConfigError(f"CITYOPS_ANSIBLE_SSH_NETWORKS: {err}") from err


def endpoint_of(server: Resource, networks: list) -> tuple[str, int]:
    """Where to SSH to, only as the operator configured it: the server's `cityops_ssh`
    metadata (a bastion-forwarded port, a test host), or an address of the server inside
    CITYOPS_ANSIBLE_SSH_NETWORKS. Never a guess: a cloud's fixed addresses (10.x in the lab,
    a tenant network elsewhere) often exist on no network the worker is on, and SSH to them
    would go wherever the worker's default route leads."""
    meta = server.attributes.get("metadata", {})
    address, _, port = meta.get("cityops_ssh", "").partition(":")
    if address:
        if port and not port.isdigit():
            raise Conflict(f"server {server.name}: its cityops_ssh metadata "
                           f"{meta['cityops_ssh']!r} is not host:port")
        return address, int(port or 22)
    addresses = server.attributes.get("addresses") or []
    for candidate in addresses:
        if any(ipaddress.ip_address(candidate) in n for n in networks):
            return candidate, 22
    raise Conflict(
        f"server {server.name} has no SSH endpoint CityOps may use: its addresses "
        f"({', '.join(addresses) or 'none'}) are outside CITYOPS_ANSIBLE_SSH_NETWORKS "
        f"({', '.join(str(n) for n in networks) or 'none set'}); give the server "
        "`cityops_ssh` metadata (host:port) or add its network to that setting")


def host_of(server: Resource, playbook: str, networks: list) -> Host:
    """The Ansible host of a server (see endpoint_of for how it is reached)."""
    meta = server.attributes.get("metadata", {})
    address, port = endpoint_of(server, networks)
    role = GROUP_OF_PLAYBOOK.get(playbook) or meta.get("cityops_role", "servers")
    variables: dict[str, Any] = {"ansible_python_interpreter": "/usr/bin/python3"}
    if meta.get("cityops_prefix"):
        variables["cityops_prefix"] = meta["cityops_prefix"]
    if meta.get("cityops_gateway"):
        variables["gateway_id"] = meta["cityops_gateway"]
    return Host(name=server.name, address=address, port=port,
                user=meta.get("cityops_ssh_user", "root"), groups=(role,), variables=variables)


def _gateway_password(ctx: Context, gateway: str) -> str:
    """Fresh broker credentials for the gateway (the old password stops working now), and
    its registry row, made together by the same service as the API's registration."""
    from api.services.broker_accounts import LocalMosquitto
    from api.services.gateways import provision

    state = ctx.settings.broker_state_dir or ctx.settings.state_dir / "broker"
    creds = LocalMosquitto(state, ctx.settings.topic_root)
    return asyncio.run(provision(ctx.settings.database_url.get_secret_value(), creds, gateway))


def configure_servers(ctx: Context, playbook: str, servers: list[Resource],
                      variables: dict[str, Any]) -> dict:
    # every host checked before anything else happens: no wheelhouse, no credentials, no SSH
    networks = ssh_networks(ctx.settings)
    hosts = [host_of(s, playbook, networks) for s in servers]
    run_vars = dict(variables)
    if needs_wheelhouse(playbook):
        cache = ctx.settings.wheelhouse_dir or ctx.settings.state_dir / "wheelhouse"
        ctx.report("wheelhouse: reusing or building the platform's wheels", progress=45)
        run_vars["cityops_wheelhouse_archive"] = str(
            build_wheelhouse(cache.absolute(), extras=wheelhouse_extras(playbook)))
    hosts = [_with_secrets(ctx, h) for h in hosts]

    def on_event(event: HostEvent) -> None:
        ctx.report(event.message, host=event.host, task=event.task, status=event.status)

    ctx.report(f"running {playbook} on {', '.join(h.name for h in hosts)}", progress=50)
    result = run_playbook(playbook, hosts, run_vars, ssh_key_file(ctx.settings).read_text(),
                          on_event)
    result.raise_for_failure(playbook)
    return {"playbook": playbook, "hosts": [h.name for h in hosts], "events": result.events}


def _with_secrets(ctx: Context, host: Host) -> Host:
    gateway = host.variables.get("gateway_id")
    if "edge_gateways" not in host.groups or not gateway:
        return host
    extra = {"gateway_password": _gateway_password(ctx, gateway), **agent_broker(ctx.settings)}
    return Host(host.name, host.address, host.port, host.user, host.groups,
                {**host.variables, **extra})


def agent_broker(settings: Settings) -> dict[str, Any]:
    """The broker part of a provisioned agent's config. Over TLS (an mqtts:// gateway URL)
    the agent verifies the broker against the CA the platform trusts (CITYOPS_MQTT_CA_FILE):
    a local or county CA is in no system store. The role writes it beside the agent's config
    as its broker.ca_file; without that setting the host's system CAs are used."""
    url = settings.gateway_mqtt_url or settings.mqtt_url
    found: dict[str, Any] = {"edge_agent_config": {"broker": {"url": url}}}
    if url.startswith("mqtts:") and settings.mqtt_ca_file is not None:
        found["gateway_broker_ca"] = settings.mqtt_ca_file.read_text()
    return found
