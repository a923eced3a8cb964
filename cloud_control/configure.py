"""Ansible runs against cloud servers: the inventory comes from the servers' records
(and, for edge gateways, the registry), secrets are made at run time and never stored."""

from __future__ import annotations

import asyncio
from typing import Any

from cityops.errors import Conflict, NotFound
from cloud_control.handlers import Context, ssh_key_file
from cloud_control.playbooks import Host, HostEvent, run_playbook
from cloud_control.provider import Resource
from cloud_control.wheelhouse import build_wheelhouse

GROUP_OF_PLAYBOOK = {"edge_gateway.yml": "edge_gateways", "ingest_worker.yml": "ingest_workers"}


def host_of(server: Resource, playbook: str) -> Host:
    """How to reach a server: its metadata may name an SSH endpoint (a bastion-forwarded port,
    or a test host), otherwise its first address on port 22."""
    meta = server.attributes.get("metadata", {})
    address, _, port = meta.get("cityops_ssh", "").partition(":")
    if not address:
        addresses = server.attributes.get("addresses") or []
        if not addresses:
            raise NotFound(f"server {server.name} has no address to configure it through")
        address = addresses[0]
    role = GROUP_OF_PLAYBOOK.get(playbook) or meta.get("cityops_role", "servers")
    variables: dict[str, Any] = {"ansible_python_interpreter": "/usr/bin/python3"}
    if meta.get("cityops_prefix"):
        variables["cityops_prefix"] = meta["cityops_prefix"]
    if meta.get("cityops_gateway"):
        variables["gateway_id"] = meta["cityops_gateway"]
    return Host(name=server.name, address=address, port=int(port or 22),
                user=meta.get("cityops_ssh_user", "root"), groups=(role,), variables=variables)


def _gateway_password(ctx: Context, gateway: str) -> str:
    """Fresh broker credentials for the gateway: the old password stops working now."""
    from api.services.broker_accounts import LocalMosquitto

    state = ctx.settings.broker_state_dir or ctx.settings.state_dir / "broker"
    creds = LocalMosquitto(state, ctx.settings.topic_root)
    try:
        return asyncio.run(creds.issue(gateway))
    except Conflict:
        asyncio.run(creds.revoke(gateway))
        return asyncio.run(creds.issue(gateway))


def configure_servers(ctx: Context, playbook: str, servers: list[Resource],
                      variables: dict[str, Any]) -> dict:
    hosts = [host_of(s, playbook) for s in servers]
    run_vars = dict(variables)
    run_vars["cityops_wheelhouse_archive"] = str(
        build_wheelhouse((ctx.settings.state_dir / "wheelhouse").absolute()))
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
    broker_url = ctx.settings.gateway_mqtt_url or ctx.settings.mqtt_url
    extra = {"gateway_password": _gateway_password(ctx, gateway),
             "edge_agent_config": {"broker": {"url": broker_url}}}
    return Host(host.name, host.address, host.port, host.user, host.groups,
                {**host.variables, **extra})
