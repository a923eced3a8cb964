"""Catalogue entries: registered by departments, and the platform's own datasets registered
automatically (each profile's readings, the city events, the cloud inventory)."""

from __future__ import annotations

from datetime import datetime

import orjson
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityops.errors import Conflict, Forbidden, InvalidInput, NotFound
from cityops.principal import Principal, Role

PLATFORM_PROVIDER = "data-resources"  # 县数据资源管理局 runs the platform (migration 043)
# local classification codes of the platform's datasets (类 5: 城市运行; 项; 目)
CLASS_READINGS, CLASS_EVENTS, CLASS_CLOUD = "5.01.001", "5.02.001", "5.03.001"
EVENT_ITEMS = [
    {"name": "id", "type": "integer"}, {"name": "channel", "type": "text"},
    {"name": "category_code", "type": "text"}, {"name": "urgency", "type": "text"},
    {"name": "state", "type": "text"}, {"name": "department_id", "type": "text"},
    {"name": "address", "type": "text"}, {"name": "reported_at", "type": "timestamp"},
    {"name": "closed_at", "type": "timestamp"}, {"name": "closed_on_time", "type": "boolean"},
]
CLOUD_ITEMS = [{"name": n, "type": "text"} for n in ("kind", "id", "name", "project", "status")]
READING_ITEMS_BASE = [{"name": "time", "type": "timestamp"}, {"name": "device", "type": "text"},
                      {"name": "point", "type": "text"}]


# the 顺序码 of a code; a code whose suffix is not a number (registered by hand or by another
# system) is not counted, rather than failing every registration in its classification
SEQUENCE = ("CASE WHEN split_part(code, '-', 2) ~ '^[0-9]{1,9}$'"
            " THEN split_part(code, '-', 2)::int END")


async def _next_code(conn: AsyncConnection, classification: str) -> str:
    """信息资源代码 = 分类码 + 顺序码; serialised per classification."""
    await conn.execute("SELECT pg_advisory_xact_lock(7413701, hashtext(%s))", (classification,))
    cur = await conn.execute(
        f"SELECT coalesce(max({SEQUENCE}), 0) + 1 FROM resources WHERE classification = %s",
        (classification,),
    )
    return f"{classification}-{(await cur.fetchone())[0]:04d}"


async def _department_exists(conn: AsyncConnection, department: str) -> None:
    cur = await conn.execute("SELECT 1 FROM departments WHERE id = %s", (department,))
    if await cur.fetchone() is None:
        raise InvalidInput(f"department {department!r} is not registered")


async def staff_department(conn: AsyncConnection, principal: Principal) -> str | None:
    cur = await conn.execute("SELECT department_id FROM users WHERE username = %s",
                             (principal.name,))
    row = await cur.fetchone()
    return row[0] if row else None


async def check_provider(conn: AsyncConnection, principal: Principal, provider: str) -> None:
    """Department staff act for their own department; admins for any."""
    if principal.role == Role.ADMIN:
        return
    mine = await staff_department(conn, principal)
    if mine != provider:
        raise Forbidden(f"only {provider!r} (or an admin) may do this; you are of {mine!r}")


async def register(conn: AsyncConnection, principal: Principal, entry: dict) -> str:
    """Add a department's dataset to the catalogue; returns its resource code."""
    await _department_exists(conn, entry["provider_id"])
    await check_provider(conn, principal, entry["provider_id"])
    if entry["sharing_type"] != "unconditional" and not entry["sharing_conditions"].strip():
        raise InvalidInput("conditional or not-shared resources need sharing_conditions"
                           " (the conditions, or the legal basis for not sharing)")
    async with conn.transaction():
        code = await _next_code(conn, entry["classification"])
        await conn.execute(
            "INSERT INTO resources (code, classification, name, provider_id, summary, format,"
            " items, sharing_type, sharing_conditions, open_to_public, update_cycle,"
            " published_on, related, created_by) VALUES (%(code)s, %(classification)s,"
            " %(name)s, %(provider_id)s, %(summary)s, %(format)s, %(items)s, %(sharing_type)s,"
            " %(sharing_conditions)s, %(open_to_public)s, %(update_cycle)s, %(published_on)s,"
            " %(related)s, %(created_by)s)",
            {**entry, "code": code, "items": orjson.dumps(entry["items"]).decode(),
             "created_by": principal.name},
        )
    return code


EDITABLE = ("name", "summary", "format", "items", "sharing_type", "sharing_conditions",
            "open_to_public", "update_cycle", "published_on", "related")


async def update(conn: AsyncConnection, principal: Principal, code: str, entry: dict,
                 expected_updated_at: datetime | None) -> None:
    """Describe a department's resource anew. Its code follows its classification and its
    provider owns it, so neither changes here; the platform's own entries follow their
    datasets and are not edited by hand. With `expected_updated_at`, an entry someone else
    changed since it was read answers 409 instead of losing their change."""
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT provider_id, classification, source_kind, updated_at"
                          " FROM resources WHERE code = %s FOR UPDATE", (code,))
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"resource {code!r} is not in the catalogue")
        await check_provider(conn, principal, row["provider_id"])
        if row["source_kind"] != "department":
            raise Conflict(f"resource {code} follows its dataset ({row['source_kind']}):"
                           " it is described where the dataset is registered")
        for key in ("classification", "provider_id"):
            if entry[key] != row[key]:
                raise InvalidInput(f"{key}: a registered resource keeps it ({row[key]});"
                                   " register a new entry instead")
        if entry["sharing_type"] != "unconditional" and not entry["sharing_conditions"].strip():
            raise InvalidInput("sharing_conditions: conditional or not-shared resources need"
                               " the conditions, or the legal basis for not sharing")
        if expected_updated_at is not None and row["updated_at"] != expected_updated_at:
            raise Conflict(f"resource {code} was changed by someone else at"
                           f" {row['updated_at'].isoformat()}: reload it and edit again")
        values = {k: entry[k] for k in EDITABLE}
        values["items"] = orjson.dumps(entry["items"]).decode()
        sets = ", ".join(f"{k} = %({k})s" for k in EDITABLE)
        await cur.execute(f"UPDATE resources SET {sets}, updated_at = now() WHERE code = %(code)s",
                          {**values, "code": code})


async def _upsert_platform(
    conn: AsyncConnection, kind: str, ref: str | None, classification: str, fields: dict,
    now: datetime,
) -> None:
    cur = await conn.execute(
        "SELECT code FROM resources WHERE source_kind = %s AND coalesce(source_ref, '') = %s",
        (kind, ref or ""),
    )
    row = await cur.fetchone()
    items = orjson.dumps(fields["items"]).decode()
    if row is not None:  # keep the entry; follow the dataset's shape
        await conn.execute(
            "UPDATE resources SET items = %s::jsonb, updated_at = %s WHERE code = %s"
            " AND items <> %s::jsonb", (items, now, row[0], items),
        )
        return
    code = await _next_code(conn, classification)
    await conn.execute(
        "INSERT INTO resources (code, classification, name, provider_id, summary, format, items,"
        " sharing_type, sharing_conditions, update_cycle, published_on, source_kind, source_ref,"
        " created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'platform')",
        (code, classification, fields["name"], fields["provider"], fields["summary"],
         "api/json", items, fields.get("sharing", "conditional"),
         fields.get("conditions", "用于城市运行管理，需提供方同意"), fields["cycle"],
         now.date(), kind, ref),
    )


async def sync_platform(conn: AsyncConnection, now: datetime) -> None:
    """Register (once) and keep current the platform's own datasets as resources."""
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT pr.id, pr.title, pr.category,"
            " (SELECT d.department_id FROM devices d WHERE d.profile_id = pr.id"
            "  AND d.department_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1) AS dept,"
            " coalesce((SELECT jsonb_agg(DISTINCT jsonb_build_object('name', p.name,"
            "  'type', p.data_type)) FROM points p JOIN devices d ON d.id = p.device_id"
            "  WHERE d.profile_id = pr.id), '[]') AS points"
            " FROM profiles pr ORDER BY pr.id"
        )
        for profile in await cur.fetchall():
            items = READING_ITEMS_BASE + sorted(profile["points"], key=lambda p: p["name"])
            await _upsert_platform(conn, "readings", profile["id"], CLASS_READINGS, {
                "name": f"物联感知数据：{profile['title'] or profile['id']}",
                "provider": profile["dept"] or PLATFORM_PROVIDER, "items": items,
                "summary": f"Readings of every {profile['id']} device ({profile['category']}).",
                "cycle": "realtime"}, now)
        await _upsert_platform(conn, "events", None, CLASS_EVENTS, {
            "name": "城市事件", "provider": PLATFORM_PROVIDER, "items": EVENT_ITEMS,
            "summary": "City events from report to closure (no personal data of reporters).",
            "cycle": "realtime"}, now)
        await cur.execute("SELECT to_regclass('cloud_resources') IS NOT NULL AS present")
        if (await cur.fetchone())["present"]:
            await _upsert_platform(conn, "cloud", None, CLASS_CLOUD, {
                "name": "政务云资源清单", "provider": PLATFORM_PROVIDER, "items": CLOUD_ITEMS,
                "summary": "The county cloud's servers, volumes and networks as last seen.",
                "cycle": "hourly"}, now)


async def get(conn: AsyncConnection, code: str) -> dict:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT r.*, d.name AS provider_name FROM resources r"
            " JOIN departments d ON d.id = r.provider_id WHERE r.code = %s", (code,),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"resource {code!r} is not in the catalogue")
    return row
