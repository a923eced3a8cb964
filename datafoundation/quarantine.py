"""Rows a sync cannot load are set aside, not fatal (issue #14, "Bad input"): a MariaDB zero
date, a NULL or repeated primary key, a value the raw column's type refuses, a NULL cursor.
The rest of the batch loads; the set-aside rows go to `sync_quarantine` with the source, the
table, the row as JSON and the reason naming the column and value, in the same transaction
as the batch (so a resumed run neither loses nor repeats them)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import psycopg
import psycopg.errors
from psycopg.types.json import Jsonb

from datafoundation.sources import Column

Aside = list[tuple[tuple, str]]  # (row, reason)
# "COPY _stage, line 12, column established: "0000-00-00"": where COPY stopped, 1-based
_LINE = re.compile(r"^COPY [^,]+, line (\d+)(?:, column ([^:]+))?")


def _reason(err: psycopg.Error) -> tuple[int | None, str]:
    diag = err.diag
    found = _LINE.match(diag.context or "")
    if found is None:
        return None, ""
    message = diag.message_primary or type(err).__name__
    column = found.group(2) or diag.column_name
    detail = f" ({diag.message_detail})" if diag.message_detail else ""
    where = f"column {column}: " if column else ""
    return int(found.group(1)), f"{where}{message}{detail}"


def _nul_row(rows: Sequence[tuple]) -> tuple[int, str] | None:
    """psycopg refuses a NUL character client-side, without a line: find the row here (only
    after such a failure, so the common path never scans values)."""
    for i, row in enumerate(rows):
        for value in row:
            if isinstance(value, str) and "\x00" in value:
                return i, f"value {value[:40]!r} contains a NUL character, which PostgreSQL " \
                          "text cannot hold"
    return None


def copy_sparing(conn: psycopg.Connection, write: Callable[[Sequence[tuple]], None],
                 rows: Sequence[tuple], repeated: list[tuple] | None = None) -> Aside:
    """COPY `rows` with `write`, setting aside each row PostgreSQL refuses. COPY stops at the
    first bad line, having accepted the lines before it: those are copied again at once (known
    good), the bad row is set aside and COPY goes on after it, so each row is sent at most
    twice and a clean batch once. Rows refused for a key already present go to `repeated`
    when given (the caller merges them), else are set aside."""
    aside: Aside = []
    start = 0
    while start < len(rows):
        try:
            with conn.transaction():
                write(rows[start:])
            return aside
        except (psycopg.DataError, psycopg.IntegrityError) as err:
            line, reason = _reason(err)
            if line is None:
                found = _nul_row(rows[start:])
                if found is None:
                    raise
                line, reason = found[0] + 1, found[1]
            bad = start + line - 1
            if repeated is not None and isinstance(err, psycopg.errors.UniqueViolation):
                repeated.append(rows[bad])
            else:
                aside.append((rows[bad], reason))
            if bad > start:
                with conn.transaction():
                    write(rows[start:bad])
            start = bad + 1
    return aside


def bad_keys(columns: list[Column], keys: list[str], rows: list[tuple]) -> tuple[list, Aside]:
    """Rows with a NULL key part, or a key already seen in this batch (merging would keep one
    of them silently): set aside, naming the key."""
    index = [[c.name for c in columns].index(k) for k in keys]
    seen: set = set()
    good, aside = [], []
    for row in rows:
        key = tuple(row[i] for i in index)
        if None in key:
            aside.append((row, f"primary key column {keys[key.index(None)]} is NULL"))
        elif key in seen:
            aside.append((row, f"key {describe(keys, key)} appears twice in one batch: the "
                               "primary key is not unique in the source"))
        else:
            seen.add(key)
            good.append(row)
    return good, aside


def describe(keys: list[str], values: Sequence) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in zip(keys, values, strict=True))


def _json_value(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, str):
        return value.replace("\x00", "\\u0000")  # jsonb cannot hold NUL either
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)  # dates, decimals from the stage: as their text


def set_aside(conn: psycopg.Connection, sync_id: int, run_id: int | None, source: str, table: str,
              columns: list[Column], aside: Aside) -> int:
    """Store the set-aside rows (inside the caller's transaction); returns how many are new
    (a row set aside twice in one run is kept once)."""
    stored = 0
    names = [c.name for c in columns]
    for row, reason in aside:
        record = {n: _json_value(v) for n, v in zip(names, row, strict=False)}
        cur = conn.execute(
            "INSERT INTO sync_quarantine (sync_id, run_id, source, source_table, row, reason) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (sync_id, run_id, source, table, Jsonb(record), reason))
        stored += cur.rowcount
    return stored
