"""People, API keys, the audit log and API usage, split by duty (三员分立, docs/security.md):
the system administrator (`admin`) manages people and reads API usage; the security
administrator assigns roles (api/routes/security.py) and manages API keys; the audit
administrator alone reads the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Path, Query, Request
from psycopg.rows import dict_row

from api.auth import hash_password
from api.deps import Caller, Conn, allow, allow_only, audit_detail, get_settings, identity
from api.passwords import check_complexity, set_password
from api.queries import registry as rq
from api.queries.audit import AuditFilter
from api.schemas.access import (
    ApiKey,
    ApiKeyCreated,
    ApiKeyIn,
    AuditEntry,
    UsageRow,
    User,
    UserIn,
    UserPatch,
)
from api.schemas.registry import Page
from cityops.api_keys import new_api_key
from cityops.errors import Conflict, Forbidden, InvalidInput
from cityops.principal import SEPARATED_ROLES, Role
from cityops.settings import Settings
from cityops.wire import ID_PATTERN

router = APIRouter(tags=["access"])
SYSTEM, SECURITY, AUDIT = allow(), allow_only(Role.SECURITY_ADMIN), allow_only(Role.AUDIT_ADMIN)
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
USER_COLUMNS = "username, role, department_id AS department, disabled, created_at"
KEY_COLUMNS = ("id, name, prefix, role, routes, departments, expires_at, revoked_at,"
               " created_by, created_at, last_used_at")


@router.get("/v1/users", response_model=Page[User],
            dependencies=[allow(Role.SECURITY_ADMIN)])
async def list_users(conn: Conn, limit: Limit = 100, offset: Offset = 0) -> dict:
    items, total = await rq.page(conn, USER_COLUMNS, "users", {}, "username", limit, offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post("/v1/users", response_model=User, status_code=201, dependencies=[SYSTEM])
async def create_user(body: UserIn, conn: Conn, request: Request,
                      settings: Annotated[Settings, Depends(get_settings)]) -> dict:
    """Create a person's login; the password must follow the rules (docs/security.md)."""
    audit_detail(request, user=body.username, role=body.role.value)
    check_complexity(body.password.get_secret_value(), body.username, settings)
    if body.department is not None and not await rq.exists(conn, "departments", body.department):
        # a field of the body, not the path: 422 like any other unknown reference
        raise InvalidInput(f"department: {body.department!r} is not registered")
    try:
        await conn.execute(
            "INSERT INTO users (username, password_hash, role, department_id)"
            " VALUES (%s, %s, %s, %s)",
            (body.username, hash_password(body.password.get_secret_value()), body.role.value,
             body.department),
        )
    except psycopg.errors.UniqueViolation as err:
        raise Conflict(f"user {body.username!r} exists already") from err
    return await rq.one(conn, USER_COLUMNS, "users", "username", body.username, "user")


@router.patch("/v1/users/{username}", response_model=User, dependencies=[SYSTEM])
async def change_user(username: Annotated[str, Path(pattern=ID_PATTERN)], body: UserPatch,
                      conn: Conn, request: Request,
                      settings: Annotated[Settings, Depends(get_settings)]) -> dict:
    """Change a department, set a new password, or disable a login. A role is the security
    administrator's to assign (PUT /v1/users/{username}/role)."""
    audit_detail(request, user=username, fields=sorted(body.model_fields_set))
    if body.role is not None:
        raise Forbidden("roles are assigned by the security administrator:"
                        f" PUT /v1/users/{username}/role")
    await rq.one(conn, USER_COLUMNS, "users", "username", username, "user")
    identity(request).forget()  # as for a revoked key: this process at once, others by NOTIFY
    changes = body.model_dump(exclude_unset=True)
    if "password" in changes:  # the rules and the history; ends the user's sessions
        await set_password(conn, username, changes.pop("password").get_secret_value(),
                           settings)
    if "department" in changes:
        changes["department_id"] = changes.pop("department")
    if "role" in changes and changes["role"] is not None:
        changes["role"] = changes["role"].value
    for column, value in changes.items():
        if value is not None or column == "department_id":
            await conn.execute(f"UPDATE users SET {column} = %s WHERE username = %s",
                               (value, username))
    return await rq.one(conn, USER_COLUMNS, "users", "username", username, "user")


@router.get("/v1/api-keys", response_model=Page[ApiKey], dependencies=[SECURITY])
async def list_api_keys(conn: Conn, limit: Limit = 100, offset: Offset = 0) -> dict:
    items, total = await rq.page(conn, KEY_COLUMNS, "api_keys", {}, "id", limit, offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post("/v1/api-keys", response_model=ApiKeyCreated, status_code=201,
             dependencies=[SECURITY])
async def create_api_key(body: ApiKeyIn, conn: Conn, caller: Caller, request: Request) -> dict:
    """Create a key for a platform service. The key is in this answer only; only its hash
    is stored."""
    audit_detail(request, api_key=body.name, role=body.role.value, routes=body.routes)
    if body.role in SEPARATED_ROLES:
        raise InvalidInput(f"role: {body.role.value} is a person's duty, never an API key's")
    key, prefix, key_hash = new_api_key()
    expires_at = datetime.now(UTC) + timedelta(days=body.expires_in_days)
    try:
        cur = await conn.execute(
            "INSERT INTO api_keys (name, key_hash, prefix, role, routes, departments,"
            " expires_at, created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (body.name, key_hash, prefix, body.role.value, body.routes, body.departments,
             expires_at, caller.name),
        )
    except psycopg.errors.UniqueViolation as err:
        raise Conflict(f"API key {body.name!r} exists already") from err
    key_id = (await cur.fetchone())[0]  # type: ignore[index]
    return {**await rq.one(conn, KEY_COLUMNS, "api_keys", "id", key_id, "API key"), "key": key}


@router.post("/v1/api-keys/{key_id}/revoke", response_model=ApiKey, dependencies=[SECURITY])
async def revoke_api_key(key_id: int, conn: Conn, request: Request) -> dict:
    """The key stops working at once."""
    audit_detail(request, api_key_id=key_id)
    row = await rq.one(conn, KEY_COLUMNS, "api_keys", "id", key_id, "API key")  # type: ignore
    if row["revoked_at"] is not None:
        raise Conflict(f"API key {row['name']!r} is already revoked")
    await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (key_id,))
    # this process forgets at once; the others when the trigger's NOTIFY reaches them
    identity(request).forget()
    return await rq.one(conn, KEY_COLUMNS, "api_keys", "id", key_id, "API key")  # type: ignore


@router.get("/v1/audit", response_model=Page[AuditEntry], dependencies=[AUDIT])
async def query_audit(
    conn: Conn, filters: Annotated[AuditFilter, Depends()],
    limit: Limit = 100, offset: Offset = 0,
) -> dict:
    """Who did what, when, from where, with what outcome; newest first. `action` and
    `target` match rows containing the text; the export takes the same filters."""
    where, params = filters.where()
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT count(*) AS n FROM audit_log WHERE {where}", params)
        total = (await cur.fetchone())["n"]  # type: ignore[index]
        await cur.execute(f"SELECT * FROM audit_log WHERE {where}"
                          " ORDER BY time DESC, id DESC LIMIT %s OFFSET %s",
                          [*params, limit, offset])
        items = await cur.fetchall()
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/v1/api-usage", response_model=list[UsageRow], dependencies=[SYSTEM])
async def api_usage(
    conn: Conn,
    since: Annotated[datetime | None, Query(description="default: the last 24 hours")] = None,
) -> list[dict]:
    """Calls made with API keys, per key and route: what the data-service dashboards count."""
    since = since or datetime.now(UTC) - timedelta(days=1)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT k.name AS key, c.method, c.route, count(*) AS calls,"
            " count(*) FILTER (WHERE c.status >= 400) AS errors,"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY c.duration_ms) AS p50_ms,"
            " percentile_cont(0.99) WITHIN GROUP (ORDER BY c.duration_ms) AS p99_ms"
            " FROM api_calls c JOIN api_keys k ON k.id = c.key_id WHERE c.time >= %s"
            " GROUP BY k.name, c.method, c.route ORDER BY k.name, c.route, c.method", (since,),
        )
        return await cur.fetchall()
