"""Who may read a dataset through the data service, and what of it: the live grant on the
dataset's catalogue resource decides the fields, the fields served in the clear and the rows.
The provider's own staff, the data bureau and admins read every field and row, still masked:
seeing a value in the clear always takes a grant that names the field."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityops.errors import Forbidden
from cityops.principal import Principal, Role
from datafoundation.catalogue import resources
from datafoundation.services.masking import effective_kind
from datafoundation.services.request import Filter


@dataclass(frozen=True)
class Access:
    fields: frozenset[str] | None  # None: every field
    unmasked: frozenset[str]
    scope: dict  # field -> {"in": [...]} or {"prefix": [...]}
    grant_id: int | None = None


EVERYTHING_MASKED = Access(None, frozenset(), {})


async def _grant(conn: AsyncConnection, principal: Principal, code: str, now: datetime):
    who = ("g.api_key_id = %(key)s" if principal.kind == "api_key" else "g.grantee = %(name)s")
    async with conn.cursor(row_factory=dict_row) as cur:
        # several live grants on one resource: the latest decides (docs/data-foundation.md)
        await cur.execute(
            f"SELECT g.id, g.fields, g.unmasked_fields, g.row_scope FROM grants g WHERE {who}"
            " AND g.resource_code = %(code)s AND g.revoked_at IS NULL AND g.expires_at > %(now)s"
            " ORDER BY g.granted_at DESC, g.id DESC LIMIT 1",
            {"key": principal.key_id, "name": principal.name, "code": code, "now": now},
        )
        return await cur.fetchone()


async def access_for(
    conn: AsyncConnection, principal: Principal, dataset: dict, now: datetime
) -> Access:
    """The caller's access to the dataset, or Forbidden saying what is missing."""
    if principal.role in (Role.ADMIN, Role.DATA_ADMIN):
        return EVERYTHING_MASKED
    if principal.kind == "user" and (
            await resources.staff_department(conn, principal) == dataset["department_id"]):
        return EVERYTHING_MASKED
    code = dataset["resource_code"]
    if code is None:
        raise Forbidden(f"dataset {dataset['id']} is not in the catalogue yet: nothing of it"
                        " can be granted")
    resource = await resources.get(conn, code)
    if resource["open_to_public"]:
        return EVERYTHING_MASKED
    grant = await _grant(conn, principal, code, now)
    if grant is None:
        raise Forbidden(f"no live grant for dataset {dataset['id']} (resource {code}):"
                        " apply in the portal")
    fields = grant["fields"]
    return Access(None if fields is None else frozenset(fields),
                  frozenset(grant["unmasked_fields"]), dict(grant["row_scope"]), grant["id"])


def _scope_allows(condition: dict, value: object) -> bool:
    text = str(value)
    if "in" in condition:
        return text in {str(v) for v in condition["in"]}
    return any(text.startswith(str(p)) for p in condition.get("prefix", []))


def check_request(access: Access, dataset_id: str, fields: list[str], filters: list[Filter],
                  kinds: dict[str, str]) -> None:
    """Forbidden naming the fields or rows asked for that the grant does not give."""
    asked = list(dict.fromkeys([*fields, *(f.field for f in filters)]))
    if access.fields is not None:
        outside = [f for f in asked if f not in access.fields]
        if outside:
            raise Forbidden(f"dataset {dataset_id}: field(s) {', '.join(outside)} not granted"
                            f" (granted: {', '.join(sorted(access.fields)) or 'none'})")
    masked = [f.field for f in filters if kinds.get(f.field, "none") != "none"]
    if masked:
        raise Forbidden(f"dataset {dataset_id}: filtering on masked field(s)"
                        f" {', '.join(dict.fromkeys(masked))} would reveal their values;"
                        " not granted in the clear")
    for flt in filters:
        condition = access.scope.get(flt.field)
        if condition is None:
            continue
        if flt.op == "range" or not all(_scope_allows(condition, v) for v in flt.values):
            allowed = condition.get("in") or [f"{p}*" for p in condition.get("prefix", [])]
            raise Forbidden(f"dataset {dataset_id}: rows with {flt.field} outside"
                            f" {', '.join(map(str, allowed))} are not granted")


def mask_kinds(fields: list[dict], access: Access) -> dict[str, str]:
    """field -> the mask kind this caller gets ('none' for what it sees in the clear)."""
    return {f["name"]: ("none" if f["name"] in access.unmasked
                        else effective_kind(f["mask_kind"], f["sensitivity"])) for f in fields}
