"""Lineage read back as a graph for one dataset (table level) or one field (column level):
everything upstream of it to the source system, everything downstream of it to the topic
layer, and beyond the last dataset its catalogue resource and its data service
(`GET /v1/datasets/{id}/rows`), which the catalogue's register decides."""

from __future__ import annotations

import re

from psycopg import AsyncConnection

from cityops.errors import InvalidInput, NotFound

# a schema, table or column name: PostgreSQL's 63 bytes at most, no control characters
_PART = re.compile(r"[^\x00-\x1f]{1,63}")

_WALK = """
WITH RECURSIVE up(node) AS (
    SELECT %(start)s::text UNION SELECT e.src FROM lineage_edges e JOIN up ON e.dst = up.node
    WHERE e.level = %(level)s
), down(node) AS (
    SELECT %(start)s::text UNION SELECT e.dst FROM lineage_edges e JOIN down ON e.src = down.node
    WHERE e.level = %(level)s
)
SELECT e.src, e.dst, e.via, e.transform, e.dst IN (SELECT node FROM down) AS downstream
FROM lineage_edges e WHERE e.level = %(level)s
  AND (e.dst IN (SELECT node FROM up) OR e.src IN (SELECT node FROM down))
ORDER BY e.src, e.dst
"""


def _dataset_of(node: str) -> str | None:
    """'std.enterprises.uscc' → 'std.enterprises'; a source or service node → None."""
    if ":" in node:
        return None
    return ".".join(node.split(".")[:2])


async def _start(conn: AsyncConnection, dataset: str | None, field: str | None
                 ) -> tuple[str, str]:
    if (dataset is None) == (field is None):
        raise InvalidInput("give dataset=<schema>.<table> or field=<schema>.<table>.<column>")
    node = dataset or field or ""
    parts = node.split(".")
    if len(parts) != (2 if dataset else 3) or not all(_PART.fullmatch(p) for p in parts):
        raise InvalidInput(f"{'dataset' if dataset else 'field'} {node!r} is not "
                           f"<schema>.<table>{'' if dataset else '.<column>'}")
    cur = await conn.execute(
        "SELECT 1 FROM lineage_edges WHERE src = %s OR dst = %s LIMIT 1", (node, node))
    if await cur.fetchone() is None:
        raise NotFound(f"no lineage recorded for {'dataset' if dataset else 'field'} {node}")
    return node, "table" if dataset else "column"


async def _served(conn: AsyncConnection, datasets: set[str]) -> dict[str, str]:
    cur = await conn.execute("SELECT id, resource_code FROM datasets WHERE id = ANY(%s) AND "
                             "resource_code IS NOT NULL", (list(datasets),))
    return dict(await cur.fetchall())


async def _describe(conn: AsyncConnection, ids: set[str]) -> dict[str, dict]:
    cur = await conn.execute(
        "SELECT id, name, layer, department_id FROM datasets WHERE id = ANY(%s)",
        (list({d for i in ids if (d := _dataset_of(i))}),))
    sets = {r[0]: {"title": r[1], "layer": r[2], "department": r[3]}
            for r in await cur.fetchall()}
    cur = await conn.execute(
        "SELECT dataset_id || '.' || name, title, element_id, sensitivity FROM dataset_fields "
        "WHERE dataset_id || '.' || name = ANY(%s)", (list(ids),))
    fields = {r[0]: {"title": r[1], "element": r[2], "sensitivity": r[3]}
              for r in await cur.fetchall()}
    # a source node names its system by slug: the register gives its name and department
    slugs = {i.split(":", 1)[1].split(".")[0] for i in ids if i.startswith("source:")}
    cur = await conn.execute("SELECT slug, name, department_id FROM systems WHERE slug = ANY(%s)",
                             (list(slugs),))
    systems = {r[0]: {"title": r[1], "department": r[2]} for r in await cur.fetchall()}
    nodes = {}
    for node in ids:
        kind = node.split(":")[0] if ":" in node else ("dataset" if node.count(".") == 1
                                                       else "field")
        info = {"id": node, "kind": kind, "layer": None, "title": "", "department": None}
        dataset = _dataset_of(node)
        if dataset in sets:
            info.update(sets[dataset])
            if kind == "field":
                info["title"] = ""
        if kind == "source":
            info.update(systems.get(node.split(":", 1)[1].split(".")[0], {}))
        info.update({k: v for k, v in fields.get(node, {}).items() if v is not None})
        nodes[node] = info
    return nodes


async def lineage(conn: AsyncConnection, dataset: str | None = None,
                  field: str | None = None) -> dict:
    """{"start", "level", "nodes": [...], "edges": [...]} for a dataset or a field."""
    start, level = await _start(conn, dataset, field)
    cur = await conn.execute(_WALK, {"start": start, "level": level})
    rows = await cur.fetchall()
    edges = [{"src": s, "dst": d, "via": via, "transform": t} for s, d, via, t, _down in rows]
    # the catalogue entry and data service of the start and of every dataset downstream
    reached = {start} | {d for _s, d, _v, _t, down in rows if down}
    served = await _served(conn, {x for n in reached if (x := _dataset_of(n))})
    for node in sorted(reached):
        ds = _dataset_of(node)
        if ds not in served:
            continue
        column = "" if level == "table" else f"#{node.split('.')[2]}"
        resource = f"resource:{served[ds]}{column}"
        service = f"service:/v1/datasets/{ds}/rows{column}"
        edges += [{"src": node, "dst": resource, "via": "catalogue", "transform": ""},
                  {"src": resource, "dst": service, "via": "data service", "transform": ""}]
    ids = {start} | {e["src"] for e in edges} | {e["dst"] for e in edges}
    nodes = await _describe(conn, ids)
    return {"start": start, "level": level, "nodes": sorted(nodes.values(),
                                                            key=lambda n: n["id"]),
            "edges": edges}
