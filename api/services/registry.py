"""Registering what an agent config names (sites, departments, gateway, profiles, devices,
points) until the registry API of the device-registry issue takes over."""

from __future__ import annotations

import orjson
import psycopg

from edge_agents.config import LoadedAgentConfig


def register_agent_config(database_url: str, loaded: LoadedAgentConfig) -> int:
    """Upsert everything the config names; returns the number of devices registered."""
    config = loaded.config
    with psycopg.connect(database_url) as conn, conn.transaction():
        for site in {config.site, *(d.site for d in config.devices)} - {None}:
            conn.execute("INSERT INTO sites (id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                         (site, site))
        for dept in {config.department, *(d.department for d in config.devices)} - {None}:
            conn.execute(
                "INSERT INTO departments (id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (dept, dept),
            )
        conn.execute(
            "INSERT INTO gateways (id, site_id, department_id) VALUES (%s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET site_id = excluded.site_id,"
            " department_id = excluded.department_id",
            (config.gateway, config.site, config.department),
        )
        for device in config.devices:
            profile = loaded.profiles[device.id]
            conn.execute(
                "INSERT INTO profiles (id, protocol, category, title, body)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET"
                " body = excluded.body, title = excluded.title, updated_at = now()",
                (profile.model, profile.protocol, profile.category, profile.title,
                 orjson.dumps(profile.model_dump(mode="json")).decode()),
            )
            conn.execute(
                "INSERT INTO devices (id, title, gateway_id, profile_id, site_id, department_id,"
                " address, latitude, longitude) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)"
                " ON CONFLICT (id) DO UPDATE SET gateway_id = excluded.gateway_id,"
                " profile_id = excluded.profile_id, address = excluded.address",
                (device.id, device.title, config.gateway, profile.model,
                 device.site or config.site, device.department or config.department,
                 orjson.dumps(device.endpoint.model_dump(mode="json")).decode(),
                 device.latitude, device.longitude),
            )
            _register_points(conn, device.id, profile)
    return len(config.devices)


def _register_points(conn: psycopg.Connection, device: str, profile) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO points (device_id, name, title, unit, data_type, writable)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (device_id, name) DO UPDATE SET"
            " unit = excluded.unit, data_type = excluded.data_type,"
            " writable = excluded.writable, title = excluded.title",
            [(device, p.name, p.title, p.unit, p.data_type.value, p.writable)
             for p in profile.points],
        )


def add_user(database_url: str, username: str, password_hash: str, role: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO users (username, password_hash, role) VALUES (%s, %s, %s)"
            " ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash,"
            " role = excluded.role, disabled = false",
            (username, password_hash, role),
        )
