"""Lineage, recorded from the declarations (never typed in by hand): a sync gives source →
raw, table and columns alike; a mapping model gives upstream columns → its columns from the
columns each expression reads; a SQL model's column lineage is read by sqlglot. Read back as
a graph of nodes and edges, extended at read time to the catalogue resource and the data
service of each dataset (those registers are the truth for them)."""

from __future__ import annotations

import psycopg
import sqlglot
from sqlglot.lineage import lineage as sqlglot_lineage

from datafoundation.governance.models import Model, columns_read


def _replace(conn: psycopg.Connection, via: str, edges: list[tuple[str, str, str, str]]) -> None:
    """The edges `via` gives, replacing what it gave before (a column dropped from a model
    loses its edge)."""
    conn.execute("DELETE FROM lineage_edges WHERE via = %s", (via,))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO lineage_edges (src, dst, level, via, transform) VALUES (%s, %s, %s, "
            "%s, %s) ON CONFLICT (src, dst, level) DO UPDATE SET via = EXCLUDED.via, "
            "transform = EXCLUDED.transform, updated_at = now()",
            [(src, dst, level, via, transform) for src, dst, level, transform in edges])


def record_sync(conn: psycopg.Connection, sync_id: int, system: str, obj: str, dataset: str,
                columns: list[str]) -> None:
    source = f"source:{system}.{obj}"
    edges = [(source, dataset, "table", "")]
    edges += [(f"{source}.{c}", f"{dataset}.{c}", "column", "") for c in columns
              if not c.startswith("_")]
    _replace(conn, f"sync:{sync_id}", edges)


def _table_columns(conn: psycopg.Connection, dataset: str) -> set[str]:
    return {r[0] for r in conn.execute(
        "SELECT name FROM dataset_fields WHERE dataset_id = %s", (dataset,))} | {
        r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
            "AND NOT attisdropped", (dataset,))}


def _mapping_edges(conn: psycopg.Connection, model: Model) -> list[tuple[str, str, str, str]]:
    upstream = model.source or ""
    known = _table_columns(conn, upstream)
    edges = []
    for c in model.columns:
        transform = c.sql or (f"{c.map.column} → {c.map.table} ({c.map.source})" if c.map
                              else "")
        for read in columns_read(c):
            if read in known:
                edges.append((f"{upstream}.{read}", f"{model.target}.{c.name}", "column",
                              transform))
    return edges


def _sql_edges(conn: psycopg.Connection, model: Model) -> list[tuple[str, str, str, str]]:
    query = model.sql or ""
    select = sqlglot.parse_one(query, read="postgres")
    edges = []
    for name in select.named_selects:
        node = sqlglot_lineage(name, query, None, dialect="postgres")
        for leaf in node.walk():
            if leaf.downstream or not isinstance(leaf.source, sqlglot.exp.Table):
                continue
            table = leaf.source
            if not table.db:  # a code table or other platform table, not a dataset
                continue
            column = leaf.name.split(".")[-1]
            edges.append((f"{table.db}.{table.name}.{column}", f"{model.target}.{name}",
                          "column", ""))
    return list(dict.fromkeys(edges))


def record_model(conn: psycopg.Connection, model: Model) -> None:
    edges = [(u, model.target, "table", "") for u in model.upstream]
    edges += _mapping_edges(conn, model) if model.sql is None else _sql_edges(conn, model)
    _replace(conn, f"model:{model.name}", edges)
