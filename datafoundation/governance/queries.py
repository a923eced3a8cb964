"""Reading the standards for the API: the data elements (with how many dataset fields each
one governs) and a code table's values."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityops.errors import NotFound

ELEMENTS = """
SELECT e.id, e.name_zh, e.name_en, e.definition, e.data_type, e.data_format, e.value_domain,
       e.code_table, e.sensitivity, e.mask_kind, e.unit, e.source_org, e.synonyms, e.version,
       (SELECT count(*) FROM dataset_fields f WHERE f.element_id = e.id) AS fields
FROM data_elements e
WHERE %(q)s::text IS NULL OR e.id ILIKE %(like)s OR e.name_zh ILIKE %(like)s
   OR e.name_en ILIKE %(like)s OR %(q)s = ANY(e.synonyms)
ORDER BY e.id
"""


async def elements(conn: AsyncConnection, q: str | None = None) -> list[dict]:
    # the words as typed: a % or _ in them matches itself
    like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" if q \
        else None
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(ELEMENTS, {"q": q, "like": like})
        return await cur.fetchall()


async def code_table(conn: AsyncConnection, table_id: str) -> dict:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT id, name, standard, version FROM code_tables WHERE id = %s",
                          (table_id,))
        table = await cur.fetchone()
        if table is None:
            raise NotFound(f"code table {table_id} does not exist")
        await cur.execute("SELECT code, name, parent, level FROM code_values WHERE table_id = "
                          "%s ORDER BY level, code", (table_id,))
        return {**table, "values": await cur.fetchall()}


async def code_tables(conn: AsyncConnection) -> list[dict]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT t.id, t.name, t.standard, t.version, count(v.code) AS codes "
                          "FROM code_tables t LEFT JOIN code_values v ON v.table_id = t.id "
                          "GROUP BY t.id ORDER BY t.id")
        return await cur.fetchall()


async def layer_models(conn: AsyncConnection) -> list[dict]:
    """Each model as last loaded (version, digest, upstream) with its last run."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT m.name, m.layer, m.target, m.upstream, m.version, m.digest, m.loaded_at, "
            "m.declaration->>'department' AS department, to_jsonb(r) - 'model' AS last_run "
            "FROM layer_models m LEFT JOIN LATERAL (SELECT id, state, rows_in, rows_out, "
            "rows_rejected, unmapped, error, started_at, finished_at, version, model FROM "
            "layer_model_runs WHERE model = m.name ORDER BY id DESC LIMIT 1) r ON true "
            "ORDER BY m.layer, m.name")
        return await cur.fetchall()
