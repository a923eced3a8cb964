"""SQL of the network page: the network devices with their latest values and open alarms,
and the declared links (table network_links, migration 195)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityops.errors import Conflict, InvalidInput, NotFound
from network import topology

# the agent's word on each device (online, offline, unknown) is in its gateway's last status
_DEVICES = """
SELECT d.id, d.title, d.profile_id AS profile, d.site_id AS site, d.department_id AS department,
    g.last_status->'devices'->>d.id AS state,
    (SELECT count(*) FROM alarms a WHERE a.device_id = d.id AND a.state <> 'cleared')
        AS open_alarms
FROM devices d JOIN profiles pr ON pr.id = d.profile_id JOIN gateways g ON g.id = d.gateway_id
WHERE pr.category = 'network' AND (%(deps)s::text[] IS NULL OR d.department_id = ANY(%(deps)s))
    AND (%(only)s::text IS NULL OR d.id = %(only)s)
ORDER BY d.id
"""
_LATEST = """
SELECT p.device_id, p.name, p.data_type, l.value, l.text FROM points p
JOIN readings_latest l ON l.point_id = p.id WHERE p.device_id = ANY(%s)
"""


def _typed(data_type: str, value: float | None, text: str | None) -> Any:
    if data_type == "string":
        return text
    if value is None or data_type in ("float32", "float64"):
        return value
    if data_type == "bool":
        return bool(value)
    return int(value) if float(value).is_integer() and abs(value) <= 2**53 else value


async def network_devices(conn: AsyncConnection, departments: list[str] | None,
                          only: str | None = None) -> list[dict[str, Any]]:
    """The network devices the caller sees (None: every department), each with `latest`."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_DEVICES, {"deps": departments, "only": only})
        devices = await cur.fetchall()
        await cur.execute(_LATEST, ([d["id"] for d in devices],))
        latest: dict[str, dict[str, Any]] = {}
        for r in await cur.fetchall():
            latest.setdefault(r["device_id"], {})[r["name"]] = _typed(
                r["data_type"], r["value"], r["text"])
    for d in devices:
        d["latest"] = latest.get(d["id"], {})
    return devices


async def declared_links(conn: AsyncConnection) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT id, device_a, port_a, device_b, port_b, note, created_by,"
                          " created_at FROM network_links ORDER BY id")
        return await cur.fetchall()


async def port_alarms(conn: AsyncConnection, device: str) -> list[dict[str, Any]]:
    """The device's open alarms with the port their point belongs to (None: the device's,
    e.g. links_down or offline)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT a.id, a.rule_id AS rule, a.severity, a.state, a.message, a.first_seen_at,"
            " p.name AS point FROM alarms a LEFT JOIN points p ON p.id = a.point_id"
            " WHERE a.device_id = %s AND a.state <> 'cleared' ORDER BY a.first_seen_at DESC",
            (device,))
        rows = await cur.fetchall()
    for r in rows:
        r["port"] = r["point"].split(".", 1)[0] if r["point"] and "." in r["point"] else None
    return rows


async def _check_end(conn: AsyncConnection, device: str, port: str, field: str) -> str | None:
    """The device's department; InvalidInput naming the field when it is no network device
    or has no such port."""
    cur = await conn.execute(
        "SELECT d.department_id, pr.category, EXISTS (SELECT 1 FROM points p WHERE"
        " p.device_id = d.id AND p.name LIKE %s) FROM devices d JOIN profiles pr"
        " ON pr.id = d.profile_id WHERE d.id = %s", (port + ".%", device))
    row = await cur.fetchone()
    if row is None:
        raise InvalidInput(f"{field}: device {device!r} is not registered")
    if row[1] != "network":
        raise InvalidInput(f"{field}: device {device!r} is no network device ({row[1]})")
    if not row[2]:
        raise InvalidInput(f"{field}: device {device!r} has no port {port!r}")
    return row[0]


async def link_departments(conn: AsyncConnection, body: dict[str, str]) -> list[str | None]:
    return [await _check_end(conn, body["device_a"], body["port_a"], "device_a"),
            await _check_end(conn, body["device_b"], body["port_b"], "device_b")]


async def declare_link(conn: AsyncConnection, body: dict[str, str], actor: str) -> dict:
    ends = [(body["device_a"], body["port_a"]), (body["device_b"], body["port_b"])]
    if ends[0] == ends[1]:
        raise InvalidInput("device_b/port_b: a link joins two different ports")
    for device, port in ends:
        cur = await conn.execute(
            "SELECT id FROM network_links WHERE (device_a = %(d)s AND port_a = %(p)s)"
            " OR (device_b = %(d)s AND port_b = %(p)s)", {"d": device, "p": port})
        if (other := await cur.fetchone()) is not None:
            raise Conflict(f"port {port} of {device!r} already has declared link {other[0]}")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "INSERT INTO network_links (device_a, port_a, device_b, port_b, note, created_by)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id, device_a, port_a, device_b,"
            " port_b, note, created_by, created_at",
            (*ends[0], *ends[1], body.get("note") or "", actor))
        row = await cur.fetchone()
    assert row is not None
    return row


async def remove_link(conn: AsyncConnection, link: int) -> dict:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("DELETE FROM network_links WHERE id = %s RETURNING id, device_a,"
                          " port_a, device_b, port_b, note", (link,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"network link {link} not found")
    return row


async def device_ports(conn: AsyncConnection, device: str) -> dict[str, Any]:
    """A network device's port table with each port's open alarms."""
    found = await network_devices(conn, None, only=device)
    if not found:
        raise NotFound(f"network device {device!r} not found (a device of a network profile)")
    d = found[0]
    ports = topology.ports_of(d["latest"])
    alarms = await port_alarms(conn, device)
    rows = [{**p, "alarms": [a for a in alarms if a["port"] == key]}
            for key, p in ports.items()]
    return {"device": device, "title": d["title"], "state": d["state"], "ports": rows,
            "device_alarms": [a for a in alarms if a["port"] is None]}


async def network_topology(conn: AsyncConnection, departments: list[str] | None) -> dict:
    """Nodes, links, and the ports that are down with their device's open alarms (a port's
    own, and the device's: links_down is counted per device)."""
    devices = await network_devices(conn, departments)
    graph = topology.topology(devices, await declared_links(conn))
    down = []
    for d in devices:
        keys = [k for k, p in d["ports"].items() if p["down"]]
        alarms = await port_alarms(conn, d["id"]) if keys else []
        down += [{"device": d["id"], "title": d["title"], "port": k,
                  "name": d["ports"][k].get("name"),
                  "alarms": [a for a in alarms if a["port"] in (k, None)]} for k in keys]
    return {**graph, "down_ports": down}
