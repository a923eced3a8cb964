"""PostgreSQL sources (a department's own PostgreSQL, e.g. 城管局's 部件 inventory). Values are
read as text (`::text` in the query): the raw layer's COPY parses them, no Python objects."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
from psycopg import sql

from cityops.errors import SourceError, SourceUnavailable
from datafoundation.sources import Column, Page

_TYPES = {"character varying": "text", "character": "text", "USER-DEFINED": "text",
          "ARRAY": "text", "timestamp without time zone": "timestamp",
          "timestamp with time zone": "timestamptz", "time without time zone": "time"}
# refusals a later attempt cannot fix; anything else on connect is taken as unreachable
_REFUSED = ("password authentication failed", "does not exist", "no pg_hba.conf entry",
            "permission denied")


class PostgreSQLSource:
    def __init__(self, name: str, settings: dict, credentials: dict[str, str]) -> None:
        self.name = name
        self.settings = settings
        self.schema = settings.get("schema", "public")
        self._password = credentials.get("password", "")
        self.conn: psycopg.Connection | None = None

    def _error(self, err: Exception, what: str, connecting: bool = False) -> SourceError:
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if self._password:
            text = text.replace(self._password, "***")  # never let a secret into an error
        unreachable = connecting and not any(r in text for r in _REFUSED)
        kind = SourceUnavailable if unreachable else SourceError
        return kind(f"source {self.name}: {what}: {text}")

    def connect(self) -> None:
        s = self.settings
        try:
            self.conn = psycopg.connect(
                host=s.get("host", "127.0.0.1"), port=int(s.get("port", 5432)),
                dbname=s["database"], user=s.get("user", ""), password=self._password,
                connect_timeout=int(s.get("connect_timeout_s", 10)), autocommit=True)
        except psycopg.Error as err:
            raise self._error(err, f"cannot connect to {s.get('host')}:{s.get('port')}",
                              connecting=True) from err

    def close(self) -> None:
        if self.conn:
            self.conn.close()
            self.conn = None

    def _query(self, query: sql.Composable | str, args: tuple, what: str) -> list[tuple]:
        assert self.conn is not None
        try:
            return self.conn.execute(query, args).fetchall()
        except psycopg.Error as err:
            raise self._error(err, what) from err

    def columns(self, table: str) -> list[Column]:
        rows = self._query(
            "SELECT column_name, data_type FROM information_schema.columns WHERE "
            "table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (self.schema, table), f"table {table}")
        if not rows:
            raise SourceError(f"source {self.name}: table {table} does not exist")
        return [Column(name, _TYPES.get(dt, dt)) for name, dt in rows]

    def _table(self, table: str) -> sql.Composable:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(table))

    def null_rows(self, table: str, columns: list[Column], column: str, keys: list[str],
                  limit: int = 10000) -> list[tuple]:
        """Rows a keyset read never reaches (`column`, the cursor or a key part, is NULL),
        for quarantine."""
        q = sql.SQL("SELECT {s} FROM {t} WHERE {c} IS NULL LIMIT {n}").format(
            s=_text_select([c.name for c in columns]), t=self._table(table),
            c=sql.Identifier(column), n=sql.Literal(int(limit)))
        return self._query(q, (), f"table {table}")

    def keys(self, table: str, keys: list[str]) -> list[tuple]:
        q = sql.SQL("SELECT {k} FROM {t}").format(k=_text_select(keys), t=self._table(table))
        return self._query(q, (), f"table {table}")

    def key_counts(self, table: str, keys: list[str], values: list[tuple]) -> set[tuple]:
        """Which of these keys more than one source row holds (a duplicate, not an update)."""
        q = sql.SQL("SELECT {s} FROM {t} WHERE ROW({k}) IN ({v}) GROUP BY {k} "
                    "HAVING count(*) > 1").format(
            s=_text_select(keys), t=self._table(table), k=_names(keys),
            v=sql.SQL(", ").join(sql.SQL("ROW({})").format(
                sql.SQL(", ").join(sql.Placeholder() * len(keys))) for _ in values))
        return {tuple(r) for r in self._query(q, tuple(v for k in values for v in k),
                                               f"table {table}")}

    def estimate(self, table: str) -> int | None:
        """The planner's row estimate (reltuples; -1 before the first ANALYZE)."""
        rows = self._query("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                           (f'"{self.schema}"."{table}"',), f"table {table}")
        return int(rows[0][0]) if rows and rows[0][0] is not None and rows[0][0] >= 0 else None

    def bounds(self, table: str, key: str, cursor: str | None) -> tuple:
        """(min key, max key, max cursor), as MariaDBSource.bounds."""
        q = sql.SQL("SELECT min({k})::text, max({k})::text, {c} FROM {t}").format(
            k=sql.Identifier(key), t=self._table(table),
            c=sql.SQL("max({})::text").format(sql.Identifier(cursor)) if cursor
            else sql.SQL("NULL"))
        return self._query(q, (), f"table {table}")[0]

    def read(self, table: str, columns: list[Column], keys: list[str], cursor: str | None,
             after: Page, batch_rows: int, until: object = None) -> Iterator[list[tuple]]:
        """Keyset batches in (cursor, key) order, as MariaDBSource.read (a row comparison:
        PostgreSQL walks an index for it)."""
        names = [c.name for c in columns]
        index, ci = [names.index(k) for k in keys], names.index(cursor) if cursor else None
        # qualified: a bare name in ORDER BY would mean the output column, the ::text copy
        order = sql.SQL(", ").join(sql.SQL("src.{}").format(sql.Identifier(n))
                                   for n in ([cursor] if cursor else []) + keys)
        page = after
        while True:
            # rows with a NULL key part (or cursor) are set aside by the runner
            where = sql.SQL("WHERE ") + sql.SQL(" AND ").join(
                sql.SQL("src.{} IS NOT NULL").format(sql.Identifier(n))
                for n in ([cursor] if cursor else []) + keys)
            args: tuple = ()
            if until is not None:
                where += sql.SQL(" AND src.{} <= %s").format(sql.Identifier(keys[0]))
                args = (until,)
            if page.key is None and page.cursor is not None and cursor:
                where += sql.SQL(" AND src.{} >= %s").format(sql.Identifier(cursor))
                args = (*args, page.cursor)
            elif page.key is not None or page.cursor is not None:
                after_args = ((page.cursor,) if cursor else ()) + tuple(page.key or ())
                args = (*args, *after_args)
                where += sql.SQL(" AND ROW({o}) > ROW({v})").format(
                    o=order, v=sql.SQL(", ").join(sql.Placeholder() * len(after_args)))
            q = sql.SQL("SELECT {s} FROM {t} AS src {w} ORDER BY {o} LIMIT {n}").format(
                s=_text_select(names), t=self._table(table), w=where, o=order,
                n=sql.Literal(int(batch_rows)))
            rows = self._query(q, args, f"table {table}")
            if not rows:
                return
            yield rows
            page = Page(rows[-1][ci] if ci is not None else None,
                        tuple(rows[-1][i] for i in index))
            if len(rows) < batch_rows:
                return


def _names(names: list[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def _text_select(names: list[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(n)) for n in names)
