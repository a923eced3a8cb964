"""API keys behind grants, on the API facade's `api_keys` table and its key helpers.

One key per applicant and application serves all of that application's grants: a new grant
extends the key's expiry instead of handing out another secret. The key's route scope is the
data route only; which resources it may read is decided per call from `grants` (a route
pattern cannot tell one resource code from another).
"""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection

from cityops.api_keys import hash_api_key, new_api_key
from cityops.principal import Role

DATA_ROUTES = ["GET /v1/catalogue/resources/{code}/data",
               "GET /v1/datasets/{dataset_id}/rows"]  # the data service (issue 15)
KEY_ROLE = Role.VIEWER


async def issue_or_extend(
    conn: AsyncConnection, *, applicant: str, application: str, request_id: int,
    expires_at: datetime, now: datetime,
) -> tuple[int, str | None]:
    """(key id, the new secret or None when an existing key was extended)."""
    cur = await conn.execute(
        "SELECT k.id FROM grants g JOIN api_keys k ON k.id = g.api_key_id"
        " WHERE g.grantee = %s AND g.application = %s AND k.revoked_at IS NULL"
        " AND k.expires_at > %s ORDER BY g.id DESC LIMIT 1",
        (applicant, application, now),
    )
    row = await cur.fetchone()
    if row is not None:
        await conn.execute(
            "UPDATE api_keys SET expires_at = greatest(expires_at, %s) WHERE id = %s",
            (expires_at, row[0]),
        )
        return row[0], None
    key, prefix, key_hash = new_api_key()
    cur = await conn.execute(
        "INSERT INTO api_keys (name, key_hash, prefix, role, routes, departments, expires_at,"
        " created_by) VALUES (%s, %s, %s, %s, %s, NULL, %s, %s) RETURNING id",
        (f"portal-{request_id}", key_hash, prefix, KEY_ROLE.value, DATA_ROUTES, expires_at,
         f"portal:{applicant}"),
    )
    return (await cur.fetchone())[0], key


async def rotate(conn: AsyncConnection, key_id: int) -> str:
    """A fresh secret for a key, shown once: how an applicant collects a key approved by
    someone else (no secret is ever stored in the clear while it waits)."""
    key, prefix, _hash = new_api_key()
    await conn.execute("UPDATE api_keys SET key_hash = %s, prefix = %s WHERE id = %s",
                       (hash_api_key(key), prefix, key_id))
    return key


async def revoke_if_unused(conn: AsyncConnection, key_id: int, now: datetime) -> bool:
    """Revoke the key when no live grant uses it any more; True when revoked."""
    cur = await conn.execute(
        "SELECT 1 FROM grants WHERE api_key_id = %s AND revoked_at IS NULL AND expires_at > %s",
        (key_id, now),
    )
    if await cur.fetchone() is not None:
        return False
    await conn.execute(
        "UPDATE api_keys SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL", (now, key_id)
    )
    return True
