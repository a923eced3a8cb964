"""Lineage graph (数据血缘): nodes and edges from a source column to an API field."""

from __future__ import annotations

from pydantic import BaseModel


class LineageNode(BaseModel):
    id: str              # 'source:<system>.<object>[.<col>]', '<schema>.<table>[.<col>]',
    # 'resource:<code>[#<col>]', 'service:/v1/datasets/<id>/rows[#<col>]'
    kind: str            # source, dataset, field, resource, service
    layer: str | None    # raw, standard, topic for datasets and fields
    title: str
    department: str | None
    element: str | None = None
    sensitivity: int | None = None


class LineageEdge(BaseModel):
    src: str
    dst: str
    via: str             # 'sync:<id>', 'model:<name>', 'catalogue', 'data service'
    transform: str       # the column's expression or code mapping, when declared


class LineageOut(BaseModel):
    start: str
    level: str           # table or column
    nodes: list[LineageNode]
    edges: list[LineageEdge]
