"""Source adapters: one module per vendor library, each speaking Column and row tuples."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str  # the raw layer's type for it


@dataclass(frozen=True)
class Page:
    """Where a keyset read resumes: after (cursor, key) in incremental mode, after key in full."""

    cursor: str | None
    key: object | None
