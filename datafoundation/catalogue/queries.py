"""SQL reads of the catalogue and the portal: search, requests, grants."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import dict_row

_SEARCH = """
SELECT r.*, d.name AS provider_name,
    (SELECT count(*) FROM grants g WHERE g.resource_code = r.code AND g.revoked_at IS NULL
     AND g.expires_at > now()) AS live_grants,
    (SELECT count(*) FROM access_requests a WHERE a.resource_code = r.code) AS requests
FROM resources r JOIN departments d ON d.id = r.provider_id
WHERE {where}
ORDER BY r.classification, r.code LIMIT %(limit)s OFFSET %(offset)s
"""


async def search(conn: AsyncConnection, filters: dict, limit: int, offset: int) -> list[dict]:
    """Free text over name, summary and data items; facets by provider, sharing type,
    openness and classification prefix (类 / 类.项 / ...)."""
    where = ["true"]
    if filters.get("q"):
        where.append("(r.name ILIKE %(like)s OR r.summary ILIKE %(like)s"
                     " OR r.items::text ILIKE %(like)s OR r.code ILIKE %(like)s)")
    for column in ("provider_id", "sharing_type", "open_to_public", "source_kind"):
        if filters.get(column) is not None:
            where.append(f"r.{column} = %({column})s")
    if filters.get("classification"):
        where.append("(r.classification = %(classification)s"
                     " OR r.classification LIKE %(classification)s || '.%%')")
    params = {**filters, "like": f"%{filters.get('q') or ''}%", "limit": limit,
              "offset": offset}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_SEARCH.format(where=" AND ".join(where)), params)
        return await cur.fetchall()


async def classifications(conn: AsyncConnection) -> list[dict]:
    """Counts per 类 and 类.项, for browsing."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT level, prefix, count(*) AS resources FROM ("
            " SELECT 1 AS level, split_part(classification, '.', 1) AS prefix FROM resources"
            " UNION ALL SELECT 2, substring(classification from '^[1-9]\\.[0-9]{2}')"
            " FROM resources) x WHERE prefix IS NOT NULL GROUP BY level, prefix"
            " ORDER BY prefix"
        )
        return await cur.fetchall()


async def requests(conn: AsyncConnection, filters: dict, limit: int) -> list[dict]:
    where = ["true"]
    for column, expr in (("id", "a.id"), ("applicant", "a.applicant"), ("state", "a.state"),
                         ("provider_id", "r.provider_id"), ("resource_code", "a.resource_code")):
        if filters.get(column) is not None:
            where.append(f"{expr} = %({column})s")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT a.*, r.provider_id, r.name AS resource_name,"
            " (SELECT g.id FROM grants g WHERE g.request_id = a.id) AS grant_id"
            " FROM access_requests a JOIN resources r ON r.code = a.resource_code"
            f" WHERE {' AND '.join(where)} ORDER BY a.id DESC LIMIT %(limit)s",
            {**filters, "limit": limit},
        )
        return await cur.fetchall()


async def grants(conn: AsyncConnection, filters: dict, limit: int) -> list[dict]:
    where = ["true"]
    for column, expr in (("id", "g.id"), ("grantee", "g.grantee"), ("provider_id", "r.provider_id"),
                         ("resource_code", "g.resource_code")):
        if filters.get(column) is not None:
            where.append(f"{expr} = %({column})s")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT g.*, r.provider_id FROM grants g JOIN resources r ON r.code = g.resource_code"
            f" WHERE {' AND '.join(where)} ORDER BY g.id DESC LIMIT %(limit)s",
            {**filters, "limit": limit},
        )
        return await cur.fetchall()
