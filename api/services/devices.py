"""Registering devices (one, or many from CSV, all or nothing) and profiles.

A device's address is validated with the agent's own model (edge_agents.config.DeviceConfig),
so what the config topic carries is exactly what the agent accepts; its points come from its
profile.
"""

from __future__ import annotations

from typing import Any

import orjson
import psycopg
from psycopg import AsyncConnection
from pydantic import ValidationError

from api.schemas.registry import DeviceIn
from api.services.gateways import bump_config, check_refs
from cityops.csv_files import read_csv
from cityops.errors import ConfigError, Conflict, InvalidInput
from edge_agents.config import DeviceConfig
from edge_agents.points import Profile
from edge_agents.profiles import parse_profile

MAX_IMPORT_ROWS = 10_000


def describe(err: ValidationError, prefix: str = "") -> list[str]:
    return [f"{prefix}{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
            for e in err.errors()]


def load_profile_body(body: Any, source: str = "profile") -> Profile:
    try:
        return parse_profile(body, source)
    except ConfigError as err:
        raise InvalidInput(err.detail) from err


async def profile_of(conn: AsyncConnection, profile_id: str) -> Profile:
    cur = await conn.execute("SELECT body FROM profiles WHERE id = %s", (profile_id,))
    row = await cur.fetchone()
    if row is None:
        raise InvalidInput(f"profile {profile_id!r} is not registered")
    return load_profile_body(row[0], f"profile {profile_id}")


async def checked_address(conn: AsyncConnection, device: DeviceIn) -> dict[str, Any]:
    """Every reference exists and the agent would accept the device; its canonical address."""
    cur = await conn.execute("SELECT revoked_at FROM gateways WHERE id = %s", (device.gateway,))
    row = await cur.fetchone()
    if row is None:
        raise InvalidInput(f"gateway {device.gateway!r} is not registered")
    if row[0] is not None:
        raise InvalidInput(f"gateway {device.gateway!r} is revoked")
    profile = await profile_of(conn, device.profile)
    await check_refs(conn, device.site, device.department)
    try:
        config = DeviceConfig.model_validate({
            "id": device.id, "profile": device.profile, "endpoint": device.address,
            "poll_interval_s": device.poll_interval_s, "timeout_s": device.timeout_s,
        })
    except ValidationError as err:
        # the agent's model says "endpoint.<protocol tag>.field"; the API's body says address
        problems = [f"address.{'.'.join(str(p) for p in e['loc'][2:]) or 'protocol'}: {e['msg']}"
                    if e["loc"][:1] == ("endpoint",) and len(e["loc"]) > 1
                    else f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                    for e in err.errors()]
        raise InvalidInput("; ".join(problems)) from err
    protocol = getattr(config.endpoint, "protocol", "modbus")
    if protocol != profile.protocol:
        raise InvalidInput(f"address: profile {profile.model} speaks {profile.protocol}, "
                           f"the address is for {protocol}")
    return config.endpoint.model_dump(mode="json")


async def sync_points(conn: AsyncConnection, device: str, profile: Profile) -> None:
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO points (device_id, name, title, unit, data_type, writable)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (device_id, name) DO UPDATE SET"
            " unit = excluded.unit, data_type = excluded.data_type,"
            " writable = excluded.writable, title = excluded.title",
            [(device, p.name, p.title, p.unit, p.data_type.value, p.writable)
             for p in profile.points],
        )


async def insert_device(conn: AsyncConnection, device: DeviceIn, address: dict) -> None:
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO devices (id, title, gateway_id, profile_id, site_id, department_id,"
                " address, latitude, longitude, poll_interval_s, timeout_s)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s)",
                (device.id, device.title, device.gateway, device.profile, device.site,
                 device.department, orjson.dumps(address).decode(), device.latitude,
                 device.longitude, device.poll_interval_s, device.timeout_s),
            )
    except psycopg.errors.UniqueViolation as err:
        raise Conflict(f"device {device.id!r} is already registered") from err
    await sync_points(conn, device.id, await profile_of(conn, device.profile))


async def create_device(conn: AsyncConnection, device: DeviceIn) -> None:
    async with conn.transaction():
        address = await checked_address(conn, device)
        await insert_device(conn, device, address)
        await bump_config(conn, {device.gateway})


def _csv_rows(data: bytes) -> tuple[list[tuple[int, dict[str, Any]]], str]:
    """(row number and a DeviceIn-shaped dict per row, the encoding read): `address.host`
    columns nest, empty cells are absent, empty rows are skipped but keep their number."""
    table = read_csv(data, "CSV")
    if not table.rows or "id" not in [c.strip() for c in table.rows[0][1]]:
        raise InvalidInput(f"CSV: row 1 must name the columns, including id "
                           f"({table.encoding} read)")
    header = [c.strip() for c in table.rows[0][1]]
    rows = []
    for number, cells in table.rows[1:]:
        row: dict[str, Any] = {}
        for column, cell in zip(header, cells, strict=False):
            if not column or cell.strip() == "":
                continue
            key, _, sub = column.partition(".")
            if sub:
                row.setdefault(key, {})[sub] = cell.strip()
            else:
                row[key] = cell.strip()
        if row:
            rows.append((number, row))
        if len(rows) > MAX_IMPORT_ROWS:
            raise InvalidInput(f"CSV: at most {MAX_IMPORT_ROWS} rows at once")
    if not rows:
        raise InvalidInput(f"CSV: no rows after the header ({table.encoding} read)")
    return rows, table.encoding


async def _check_row(conn: AsyncConnection, raw: dict[str, Any], seen: set[str]
                     ) -> tuple[DeviceIn | None, dict | None, list[str]]:
    try:
        device = DeviceIn.model_validate(raw)
    except ValidationError as err:
        return None, None, describe(err)
    if device.id in seen:
        return None, None, [f"id: device {device.id!r} appears twice in the file"]
    seen.add(device.id)
    cur = await conn.execute("SELECT 1 FROM devices WHERE id = %s", (device.id,))
    if await cur.fetchone() is not None:
        return None, None, [f"id: device {device.id!r} is already registered"]
    try:
        return device, await checked_address(conn, device), []
    except InvalidInput as err:
        return None, None, [err.detail]


async def import_csv(conn: AsyncConnection, data: bytes) -> tuple[list[str], str]:
    """Register every row or none: (the devices, the encoding read); InvalidInput carries a
    per-row report (`rows`, numbered as a spreadsheet shows them: the header is row 1)."""
    rows, encoding = _csv_rows(data)
    accepted: list[tuple[DeviceIn, dict]] = []
    rejected: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, raw in rows:
        device, address, errors = await _check_row(conn, raw, seen)
        if errors:
            rejected.append({"row": number, "id": str(raw.get("id", "")), "errors": errors})
        else:
            accepted.append((device, address))  # type: ignore[arg-type]
    if rejected:
        raise InvalidInput(f"{len(rejected)} of {len(rows)} rows rejected; nothing imported "
                           f"({encoding} read)", rows=rejected)
    async with conn.transaction():
        for device, address in accepted:
            await insert_device(conn, device, address)
        await bump_config(conn, {d.gateway for d, _ in accepted})
    return [d.id for d, _ in accepted], encoding
