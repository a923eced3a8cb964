"""The provider narrows a grant to fields and rows, and names the fields it serves in the
clear. Checked against the fields of the datasets behind the grant's resource, so a typo is an
error rather than a grant that silently covers nothing."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from cityops.errors import Conflict, InvalidInput, NotFound
from cityops.principal import Principal
from datafoundation.catalogue import resources

SCOPE_KINDS = ("in", "prefix")
MAX_SCOPE_VALUES = 200


def check_scope(row_scope: dict, known: set[str]) -> dict:
    """{field: {"in": [...]}} or {field: {"prefix": [...]}}: non-empty lists of scalars."""
    for name, condition in row_scope.items():
        if name not in known:
            raise InvalidInput(f"row_scope: the dataset has no field {name!r}")
        if not isinstance(condition, dict) or len(condition) != 1 or (
                next(iter(condition)) not in SCOPE_KINDS):
            raise InvalidInput(f"row_scope.{name}: give exactly one of 'in' or 'prefix'")
        values = next(iter(condition.values()))
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_SCOPE_VALUES or any(
                isinstance(v, dict | list) or v is None or v == "" for v in values):
            raise InvalidInput(f"row_scope.{name}: a list of 1 to {MAX_SCOPE_VALUES}"
                               " non-empty values")
    return row_scope


async def set_scope(conn: AsyncConnection, principal: Principal, grant_id: int,
                    fields: list[str] | None, unmasked: list[str], row_scope: dict) -> dict:
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT g.id, g.resource_code, g.revoked_at, r.provider_id FROM grants g"
            " JOIN resources r ON r.code = g.resource_code WHERE g.id = %s FOR UPDATE OF g",
            (grant_id,))
        grant = await cur.fetchone()
        if grant is None:
            raise NotFound(f"grant {grant_id} does not exist")
        await resources.check_provider(conn, principal, grant["provider_id"])
        if grant["revoked_at"] is not None:
            raise Conflict(f"grant {grant_id} was revoked")
        await cur.execute(
            "SELECT f.name FROM dataset_fields f JOIN datasets d ON d.id = f.dataset_id"
            " WHERE d.resource_code = %s", (grant["resource_code"],))
        known = {r["name"] for r in await cur.fetchall()}
        if not known:
            raise Conflict(f"resource {grant['resource_code']} has no dataset behind it:"
                           " there are no fields to scope")
        for what, names in (("fields", fields or []), ("unmasked_fields", unmasked)):
            unknown = sorted(set(names) - known)
            if unknown:
                raise InvalidInput(f"{what}: the dataset has no field(s) {', '.join(unknown)}")
        if fields is not None and set(unmasked) - set(fields):
            outside = ", ".join(sorted(set(unmasked) - set(fields)))
            raise InvalidInput(f"unmasked_fields: {outside} not among the granted fields")
        check_scope(row_scope, known)
        await cur.execute(
            "UPDATE grants SET fields = %s, unmasked_fields = %s, row_scope = %s WHERE id = %s"
            " RETURNING id, resource_code, fields, unmasked_fields, row_scope",
            (fields, unmasked, Jsonb(row_scope), grant_id))
        return await cur.fetchone()
