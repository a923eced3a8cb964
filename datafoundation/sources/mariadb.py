"""MariaDB/MySQL sources (the only MySQLdb import of the data foundation). mysqlclient (C)
rather than pymysql: pymysql's pure-Python row decoding read 100,000 firms in 6.8 s, slower
than everything else in a run together (docs/data-foundation.md)."""

from __future__ import annotations

from collections.abc import Iterator

import MySQLdb
from MySQLdb.constants import FIELD_TYPE

from cityops.errors import SourceError, SourceUnavailable
from datafoundation.sources import Column, Page, keyset, keyset_args

_TYPES = {
    "tinyint": "smallint", "smallint": "integer", "mediumint": "integer", "int": "bigint",
    "bigint": "numeric(20)", "decimal": "numeric", "float": "real", "double": "double precision",
    "char": "text", "varchar": "text", "text": "text", "mediumtext": "text", "longtext": "text",
    "tinytext": "text", "enum": "text", "set": "text", "json": "text",
    "date": "date", "datetime": "timestamp", "timestamp": "timestamp", "time": "interval",
    "year": "smallint", "blob": "bytea", "binary": "bytea", "varbinary": "bytea",
    "bit": "bigint",
}
# server errors that mean "not reachable now" rather than "refused"
_UNREACHABLE = {2002, 2003, 2006, 2013}


# Values come as the server's text, not Python objects: decoding DECIMAL/DATETIME into Decimal
# and datetime cost 3.3x the read (200,000 firms: 6.0 s against 1.8 s), and PostgreSQL's COPY
# parses the text anyway. Strings arrive decoded, BLOBs stay bytes (for bytea), BIT becomes an
# integer, everything else (numbers, dates, times) is decoded ASCII.
def _ascii(value: bytes | str) -> str:
    # mysqlclient hands over str for columns it decoded with the connection's charset
    return value if isinstance(value, str) else value.decode("ascii")


_TEXT_CONV = {t: _ascii for t in (
    FIELD_TYPE.DECIMAL, FIELD_TYPE.NEWDECIMAL, FIELD_TYPE.TINY, FIELD_TYPE.SHORT,
    FIELD_TYPE.LONG, FIELD_TYPE.INT24, FIELD_TYPE.LONGLONG, FIELD_TYPE.FLOAT, FIELD_TYPE.DOUBLE,
    FIELD_TYPE.TIMESTAMP, FIELD_TYPE.DATE, FIELD_TYPE.TIME,
    FIELD_TYPE.DATETIME, FIELD_TYPE.YEAR)}
_TEXT_CONV[FIELD_TYPE.BIT] = lambda value: int.from_bytes(value, "big")


def _pg_type(data_type: str, column_type: str) -> str:
    if data_type == "decimal":
        return "numeric" + column_type[len("decimal"):].split(" ")[0]
    if data_type == "bigint" and "unsigned" not in column_type:
        return "bigint"
    return _TYPES.get(data_type, "text")


class MariaDBSource:
    def __init__(self, name: str, settings: dict, credentials: dict[str, str]) -> None:
        self.name = name
        self.settings = settings
        self._password = credentials.get("password", "")
        self.conn: MySQLdb.Connection | None = None

    def _error(self, err: Exception, what: str) -> SourceError:
        code = err.args[0] if err.args else 0
        text = str(err.args[1] if len(err.args) > 1 else err)
        if self._password:
            text = text.replace(self._password, "***")  # never let a secret into an error
        kind = SourceUnavailable if code in _UNREACHABLE else SourceError
        return kind(f"source {self.name}: {what}: {text} (MariaDB error {code})")

    def connect(self) -> None:
        s = self.settings
        try:
            self.conn = MySQLdb.connect(
                host=s.get("host", "127.0.0.1"), port=int(s.get("port", 3306)),
                user=s.get("user", ""), password=self._password, database=s["database"],
                charset="utf8mb4", connect_timeout=int(s.get("connect_timeout_s", 10)),
                read_timeout=int(s.get("read_timeout_s", 300)), autocommit=True,
                conv=_TEXT_CONV)
        except MySQLdb.MySQLError as err:
            raise self._error(err, f"cannot connect to {s.get('host')}:{s.get('port')}") from err

    def close(self) -> None:
        if self.conn:
            self.conn.close()
            self.conn = None

    def columns(self, table: str) -> list[Column]:
        rows = self._query(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            (table,), f"table {table}")
        if not rows:
            raise SourceError(f"source {self.name}: table {table} does not exist")
        return [Column(name.lower(), _pg_type(dt.lower(), ct.lower())) for name, dt, ct in rows]

    def _query(self, sql: str, args: tuple, what: str) -> list[tuple]:
        assert self.conn is not None
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())
        except MySQLdb.MySQLError as err:
            raise self._error(err, what) from err

    def null_rows(self, table: str, columns: list[Column], column: str, keys: list[str],
                  limit: int = 10000) -> list[tuple]:
        """Rows a keyset read never reaches (`column`, the cursor or a key part, is NULL),
        for quarantine."""
        names = ", ".join(f"`{c.name}`" for c in columns)
        order = ", ".join(f"`{k}`" for k in keys)
        return self._query(f"SELECT {names} FROM `{table}` WHERE `{column}` IS NULL "
                           f"ORDER BY {order} LIMIT {int(limit)}", (), f"table {table}")

    def keys(self, table: str, keys: list[str]) -> list[tuple]:
        names = ", ".join(f"`{k}`" for k in keys)
        return self._query(f"SELECT {names} FROM `{table}`", (), f"table {table}")

    def key_counts(self, table: str, keys: list[str], values: list[tuple]) -> set[tuple]:
        """Which of these keys more than one source row holds (a duplicate, not an update)."""
        names = ", ".join(f"`{k}`" for k in keys)
        match = " OR ".join(["(" + " AND ".join(f"`{k}` = %s" for k in keys) + ")"] * len(values))
        rows = self._query(f"SELECT {names} FROM `{table}` WHERE {match} GROUP BY {names} "
                           "HAVING COUNT(*) > 1", tuple(v for key in values for v in key),
                           f"table {table}")
        return {tuple(str(v) for v in r) for r in rows}

    def estimate(self, table: str) -> int | None:
        """The server's row estimate (no count: InnoDB would scan the table)."""
        rows = self._query("SELECT TABLE_ROWS FROM information_schema.TABLES WHERE "
                           "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s", (table,),
                           f"table {table}")
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def bounds(self, table: str, key: str, cursor: str | None) -> tuple:
        """(min key, max key, max cursor): how a first load is split by key ranges, and the
        cursor it leaves for the next incremental run."""
        top = f"MAX(`{cursor}`)" if cursor else "NULL"
        return self._query(f"SELECT MIN(`{key}`), MAX(`{key}`), {top} FROM `{table}`", (),
                           f"table {table}")[0]

    def read(self, table: str, columns: list[Column], keys: list[str], cursor: str | None,
             after: Page, batch_rows: int, until: object = None) -> Iterator[list[tuple]]:
        """Batches in (cursor, key) order, each read by its own keyset query, so a resumed run
        starts right after the last committed row. `until`: the last key of a key range."""
        names = ", ".join(f"`{c.name}`" for c in columns)
        index = [[c.name for c in columns].index(k) for k in keys]
        ci = [c.name for c in columns].index(cursor) if cursor else None
        order = ", ".join(f"`{n}`" for n in ([cursor] if cursor else []) + keys)
        page = after
        while True:
            where, args = self._after(keys, cursor, page)
            if until is not None:
                where, args = f"{where} AND `{keys[0]}` <= %s", (*args, until)
            sql = f"SELECT {names} FROM `{table}` {where} ORDER BY {order} LIMIT {int(batch_rows)}"
            rows = self._query(sql, args, f"table {table}")
            if not rows:
                return
            if len(rows) == batch_rows:
                rows = self._whole_last(table, names, keys, cursor, rows, index, ci)
            yield rows
            last = rows[-1]
            page = Page(last[ci] if ci is not None else None, tuple(last[i] for i in index))
            if len(rows) < batch_rows:
                return

    def _whole_last(self, table: str, names: str, keys: list[str], cursor: str | None,
                    rows: list[tuple], index: list[int], ci: int | None) -> list[tuple]:
        """All the rows at the batch's last position, not just those LIMIT let in: where the
        key is not unique, the next keyset read (strictly after it) would skip the others
        silently. Here they join this batch, which sets the repeats aside by name."""
        last = rows[-1]
        position = ([last[ci]] if ci is not None else []) + [last[i] for i in index]
        match = " AND ".join(f"`{n}` = %s" for n in ([cursor] if cursor else []) + keys)
        same = self._query(f"SELECT {names} FROM `{table}` WHERE {match}", tuple(position),
                           f"table {table}")
        if len(same) <= 1:
            return rows
        at = [r for r in rows if ([r[ci]] if ci is not None else []) + [r[i] for i in index]
              == position]
        return rows[:len(rows) - len(at)] + list(same)

    @staticmethod
    def _after(keys: list[str], cursor: str | None, page: Page) -> tuple[str, tuple]:
        # rows with a NULL key part (or cursor) are set aside by the runner, never paged over
        found = [f"`{k}` IS NOT NULL" for k in keys]
        args: tuple = ()
        if cursor is not None:
            found.append(f"`{cursor}` IS NOT NULL")
            if page.cursor is not None and page.key is None:
                # after a split first load: from its high-water mark on (merging is idempotent)
                found.append(f"`{cursor}` >= %s")
                args = (page.cursor,)
            elif page.cursor is not None:
                found.append(f"({keyset([cursor, *keys])})")
                args = keyset_args((page.cursor, *page.key))
        elif page.key is not None:
            found.append(f"({keyset(keys)})")
            args = keyset_args(page.key)
        return "WHERE " + " AND ".join(found), args
