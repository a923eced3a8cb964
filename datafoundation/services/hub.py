"""The service registry (服务中枢, after 杭州's hub of APIs and indicators): every data API as
an entry of a kind with its use — calls in the last day and week, refusals, consumers, live
grants (subscriptions), last call. Kinds: `dataset` (the data service of a governed dataset),
`resource` (a catalogue resource's data route), `api` (any route called with an API key, from
the metering). A later kind (indicators) joins the same list."""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import dict_row

KINDS = ("dataset", "resource", "api")

_DATASETS = """
SELECT 'dataset' AS kind, d.id, d.name, '/v1/datasets/' || d.id || '/rows' AS path,
    d.department_id AS provider_id,
    count(c.*) FILTER (WHERE c.ok AND c.time > %(day)s) AS calls_1d,
    count(c.*) FILTER (WHERE c.ok AND c.time > %(week)s) AS calls_7d,
    count(c.*) FILTER (WHERE NOT c.ok AND c.time > %(week)s) AS refused_7d,
    count(DISTINCT c.caller) FILTER (WHERE c.ok) AS consumers_30d,
    (SELECT count(*) FROM grants g WHERE g.resource_code = d.resource_code
     AND g.revoked_at IS NULL AND g.expires_at > %(now)s) AS grants,
    (SELECT max(l.time) FROM dataset_calls l WHERE l.dataset_id = d.id) AS last_call_at
FROM datasets d
LEFT JOIN dataset_calls c ON c.dataset_id = d.id AND c.time > %(month)s
GROUP BY d.id
"""
_RESOURCES = """
SELECT 'resource' AS kind, r.code AS id, r.name,
    '/v1/catalogue/resources/' || r.code || '/data' AS path, r.provider_id,
    count(c.*) FILTER (WHERE c.ok AND c.time > %(day)s) AS calls_1d,
    count(c.*) FILTER (WHERE c.ok AND c.time > %(week)s) AS calls_7d,
    count(c.*) FILTER (WHERE NOT c.ok AND c.time > %(week)s) AS refused_7d,
    count(DISTINCT c.caller) FILTER (WHERE c.ok) AS consumers_30d,
    (SELECT count(*) FROM grants g WHERE g.resource_code = r.code AND g.revoked_at IS NULL
     AND g.expires_at > %(now)s) AS grants,
    (SELECT max(l.time) FROM resource_calls l WHERE l.resource_code = r.code) AS last_call_at
FROM resources r
LEFT JOIN resource_calls c ON c.resource_code = r.code AND c.time > %(month)s
GROUP BY r.code
"""
# routes called with keys; refused = answered 401/403
_APIS = """
SELECT 'api' AS kind, c.method || ' ' || c.route AS id, c.method || ' ' || c.route AS name,
    c.route AS path, NULL::text AS provider_id,
    count(*) FILTER (WHERE c.status < 400 AND c.time > %(day)s) AS calls_1d,
    count(*) FILTER (WHERE c.status < 400 AND c.time > %(week)s) AS calls_7d,
    count(*) FILTER (WHERE c.status IN (401, 403) AND c.time > %(week)s) AS refused_7d,
    count(DISTINCT c.key_id) FILTER (WHERE c.status < 400) AS consumers_30d,
    0::bigint AS grants, max(c.time) AS last_call_at
FROM api_calls c WHERE c.time > %(month)s
GROUP BY c.method, c.route
"""
_SQL = {"dataset": _DATASETS, "resource": _RESOURCES, "api": _APIS}


async def services(conn: AsyncConnection, now: datetime, kind: str | None = None,
                   q: str | None = None, limit: int = 100, offset: int = 0) -> list[dict]:
    """The registry's entries, busiest first (calls in the last 7 days)."""
    parts = [_SQL[k] for k in KINDS if kind in (None, k)]
    where = "WHERE s.id ILIKE %(like)s OR s.name ILIKE %(like)s" if q else ""
    day, week, month = (now - timedelta(days=n) for n in (1, 7, 30))
    params = {"now": now, "day": day, "week": week, "month": month,
              "like": f"%{q or ''}%", "limit": limit, "offset": offset}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT * FROM ({' UNION ALL '.join(parts)}) s {where}"
            " ORDER BY s.calls_7d DESC, s.kind, s.id LIMIT %(limit)s OFFSET %(offset)s", params)
        return await cur.fetchall()
