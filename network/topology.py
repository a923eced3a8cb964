"""The command centre's network as a graph (issue 20 item 2): pure logic, no SQL.

Nodes are the network devices (profile category `network`); their ports are the SNMP
profiles' table rows (`port3.oper_up`, `if1.in_bps`...: docs of edge_agents/drivers/snmp).
Links come from LLDP where the devices expose it (a port's `neighbor` system name matched to
another device's `sys_name` reading, title or id; its `neighbor_port` to that device's port
name, port key or number) and otherwise from the links an engineer declared."""

from __future__ import annotations

import re
from typing import Any

# a table row's point: <table><row>.<column>, e.g. port12.in_bps or if1.oper_up
_PORT_POINT = re.compile(r"^([a-z_]+?)(\d+)\.([a-z_]+)$")
PORT_COLUMNS = ("name", "oper_up", "admin_up", "speed_mbps", "in_bps", "out_bps",
                "in_errors_ps", "out_errors_ps", "in_discards_ps", "out_discards_ps",
                "neighbor", "neighbor_port")


def ports_of(latest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A device's ports from its latest values by point name: {port key: row}, e.g.
    {"port1": {"port": "port1", "index": 1, "name": "Gi0/1", "oper_up": True, ...}}."""
    ports: dict[str, dict[str, Any]] = {}
    for point, value in latest.items():
        m = _PORT_POINT.match(point)
        if m is None or m.group(3) not in PORT_COLUMNS:
            continue
        key = m.group(1) + m.group(2)
        row = ports.setdefault(key, {"port": key, "index": int(m.group(2))})
        row[m.group(3)] = value
    for row in ports.values():
        row["utilisation"] = utilisation(row)
        row["down"] = is_down(row)
    return dict(sorted(ports.items(), key=lambda kv: (kv[0].rstrip("0123456789"),
                                                     kv[1]["index"])))


def utilisation(port: dict[str, Any]) -> float | None:
    """max(in, out) over the port's speed, 0..1 (None when its speed or rates are unknown)."""
    speed = port.get("speed_mbps")
    rates = [r for r in (port.get("in_bps"), port.get("out_bps")) if isinstance(r, int | float)]
    if not isinstance(speed, int | float) or speed <= 0 or not rates:
        return None
    return max(rates) / (speed * 1e6)


def is_down(port: dict[str, Any]) -> bool:
    """Enabled (or not known to be disabled) but its link is down."""
    return port.get("oper_up") is False and port.get("admin_up") is not False


def node_status(state: str | None, latest: dict[str, Any], ports: dict[str, dict],
                open_alarms: int) -> str:
    """ok, degraded (a port down or an alarm open), offline (its agent says so) or unknown."""
    if state == "offline":
        return "offline"
    if state is None and not latest:
        return "unknown"
    down = latest.get("links_down")
    if open_alarms or (isinstance(down, int | float) and down > 0) or \
            any(p["down"] for p in ports.values()):
        return "degraded"
    return "ok"


def _names(device: dict[str, Any]) -> set[str]:
    """What an LLDP neighbour may call this device (system names are compared folded)."""
    names = {device["id"], device.get("title") or "", str(device["latest"].get("sys_name") or "")}
    return {n.strip().casefold() for n in names if n and n.strip()}


def _match_port(ports: dict[str, dict], text: str) -> str | None:
    """The port a neighbour's port id names: its name, its key, or its number."""
    want = text.strip().casefold()
    for key, row in ports.items():
        if want in (str(row.get("name") or "").casefold(), key.casefold()):
            return key
    if want.isdigit():
        for key, row in ports.items():
            if row["index"] == int(want):
                return key
    return None


def _end(device: str, ports: dict[str, dict], port: str) -> dict[str, Any]:
    row = ports.get(port, {})
    return {"device": device, "port": port, "name": row.get("name"),
            "oper_up": row.get("oper_up"), "speed_mbps": row.get("speed_mbps"),
            "in_bps": row.get("in_bps"), "out_bps": row.get("out_bps"),
            "utilisation": row.get("utilisation")}


def _link(a: dict, b: dict, source: str, link_id: int | None = None, note: str = "") -> dict:
    values = [u for u in (a["utilisation"], b["utilisation"]) if u is not None]
    return {"id": link_id, "source": source, "note": note, "a": a, "b": b,
            "utilisation": max(values) if values else None,
            "down": a["oper_up"] is False or b["oper_up"] is False}


def lldp_links(devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Links both of whose ends are known devices, one per pair of ports (each end's LLDP
    usually reports the other: the pair is kept once)."""
    # a name that several devices answer to (two boxes titled alike) links to none of them:
    # guessing would draw a link that is not there
    candidates: dict[str, list[dict]] = {}
    for d in devices:
        for n in _names(d):
            candidates.setdefault(n, []).append(d)
    by_name = {n: ds[0] for n, ds in candidates.items() if len(ds) == 1}
    seen: set[frozenset] = set()
    links = []
    for d in devices:
        for key, row in d["ports"].items():
            neighbour = str(row.get("neighbor") or "").strip().casefold()
            other = by_name.get(neighbour) if neighbour else None
            if other is None or other["id"] == d["id"]:
                continue
            far = _match_port(other["ports"], str(row.get("neighbor_port") or ""))
            if far is None:
                continue
            pair = frozenset({(d["id"], key), (other["id"], far)})
            if pair not in seen:
                seen.add(pair)
                links.append(_link(_end(d["id"], d["ports"], key),
                                   _end(other["id"], other["ports"], far), "lldp"))
    return links


def topology(devices: list[dict[str, Any]], declared: list[dict[str, Any]]) -> dict:
    """Nodes and links. `devices`: id, title, state, latest {point: value}, open_alarms.
    `declared`: id, device_a, port_a, device_b, port_b, note. A declared link that LLDP also
    reports is kept once, as LLDP's (with the declaration's id and note)."""
    for d in devices:
        d["ports"] = ports_of(d["latest"])
    links = lldp_links(devices)
    known = {frozenset({(x["a"]["device"], x["a"]["port"]), (x["b"]["device"], x["b"]["port"])}):
             x for x in links}
    by_id = {d["id"]: d for d in devices}
    for row in declared:
        if row["device_a"] not in by_id or row["device_b"] not in by_id:
            continue  # an end outside the caller's departments
        pair = frozenset({(row["device_a"], row["port_a"]), (row["device_b"], row["port_b"])})
        if pair in known:
            known[pair].update(id=row["id"], note=row["note"])
            continue
        links.append(_link(_end(row["device_a"], by_id[row["device_a"]]["ports"], row["port_a"]),
                           _end(row["device_b"], by_id[row["device_b"]]["ports"], row["port_b"]),
                           "declared", row["id"], row["note"]))
    nodes = [{"id": d["id"], "title": d["title"], "profile": d["profile"], "site": d["site"],
              "department": d["department"], "state": d["state"],
              "status": node_status(d["state"], d["latest"], d["ports"], d["open_alarms"]),
              "sys_name": d["latest"].get("sys_name"), "cpu_load_pct": d["latest"].get(
                  "cpu_load_pct"), "memory_used_pct": d["latest"].get("memory_used_pct"),
              "temperature_c": d["latest"].get("temperature_c"),
              "links_down": d["latest"].get("links_down"), "open_alarms": d["open_alarms"],
              "ports": len(d["ports"])} for d in devices]
    return {"nodes": nodes, "links": links}
