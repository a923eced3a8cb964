"""Source adapters: one module per vendor library, each speaking Column and row tuples."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str  # the raw layer's type for it


@dataclass(frozen=True)
class Page:
    """Where a keyset read resumes: after (cursor, key) in incremental mode, after key in full.
    `key` holds the key's values in the sync's key column order (several for a composite key)."""

    cursor: str | None
    key: tuple | None


def keyset(columns: list[str], quote: str = "`") -> str:
    """`a > %s OR (a = %s AND (b > %s OR ...))`: the rows after a position in (a, b, ...)
    order, spelt out rather than as a row comparison, which MariaDB's range optimiser does
    not always use an index for. Parameters: keyset_args(values)."""
    first, rest = f"{quote}{columns[0]}{quote}", columns[1:]
    if not rest:
        return f"{first} > %s"
    return f"{first} > %s OR ({first} = %s AND ({keyset(rest, quote)}))"


def keyset_args(values: tuple | list) -> tuple:
    if len(values) == 1:
        return (values[0],)
    return (values[0], values[0], *keyset_args(values[1:]))
