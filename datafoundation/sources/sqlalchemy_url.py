"""Any other source database through an SQLAlchemy URL (the only sqlalchemy import of the data
foundation): 达梦 (`dm+dmPython://`, DM's dmSQLAlchemy and dmPython), 人大金仓 KingbaseES
(`kingbase+ksycopg2://` from Kingbase's packages, or `postgresql+psycopg://` in its PostgreSQL
mode), Oracle, SQL Server, and MariaDB/PostgreSQL themselves. Settings: `url` without a
password (the password is the source's stored secret, put into the URL only in memory) and
`schema` (optional). Columns are reflected; values arrive as the driver's Python objects,
which the raw layer's COPY takes as they are. Keyset reads spelt out (a > x OR (a = x AND
...)) so any dialect can run them."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from cityops.errors import SourceError, SourceUnavailable, SyncRejected
from datafoundation.sources import Column, Page

# the raw layer's type for SQLAlchemy's generic types (most specific first); others: text
_TYPES = ((sa.Boolean, "boolean"), (sa.SmallInteger, "integer"), (sa.BigInteger, "numeric(20)"),
          (sa.Integer, "bigint"), (sa.Float, "double precision"), (sa.Numeric, "numeric"),
          (sa.DateTime, "timestamp"), (sa.Date, "date"), (sa.Time, "time"),
          (sa.LargeBinary, "bytea"))
_REFUSED = ("access denied", "password authentication failed", "authentication failed",
            "does not exist", "unknown database", "permission denied")


def _pg_type(column_type: sa.types.TypeEngine) -> str:
    for generic, pg in _TYPES:
        if isinstance(column_type, generic):
            return pg
    return "text"


def _typed(col: sa.ColumnElement, value: object) -> object:
    """A resume point kept as text (the sync's state) cast back to the column's type: a
    driver would bind it as a string, which e.g. PostgreSQL will not compare to a date."""
    return sa.cast(sa.literal(value), col.type) if isinstance(value, str) else value


def _after(cols: list[sa.ColumnElement], values: tuple) -> sa.ColumnElement:
    """Rows after `values` in (cols) order."""
    first = _typed(cols[0], values[0])
    if len(cols) == 1:
        return cols[0] > first
    return sa.or_(cols[0] > first, sa.and_(cols[0] == first, _after(cols[1:], values[1:])))


class SqlAlchemySource:
    def __init__(self, name: str, settings: dict, credentials: dict[str, str]) -> None:
        self.name = name
        self.settings = settings
        self._password = credentials.get("password", "")
        self.engine: sa.Engine | None = None
        self.conn: sa.Connection | None = None
        self._tables: dict[str, sa.Table] = {}

    def _error(self, err: Exception, what: str, connecting: bool = False) -> SourceError:
        text = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        if self._password:
            text = text.replace(self._password, "***")  # never let a secret into an error
        refused = any(r in text.lower() for r in _REFUSED)
        kind = SourceUnavailable if connecting and not refused else SourceError
        return kind(f"source {self.name}: {what}: {text}")

    def connect(self) -> None:
        try:
            url = sa.engine.make_url(self.settings["url"])
        except (KeyError, sa_exc.ArgumentError) as err:
            raise SyncRejected(f"source {self.name}: settings.url: not an SQLAlchemy URL "
                               f"({err})") from err
        if url.password:
            raise SyncRejected(f"source {self.name}: settings.url carries a password; store "
                               "it as the source's password (kept encrypted)")
        try:
            self.engine = sa.create_engine(url.set(password=self._password or None),
                                           poolclass=sa.pool.NullPool)
            self.conn = self.engine.connect()
        except sa_exc.NoSuchModuleError as err:
            raise SyncRejected(f"source {self.name}: no SQLAlchemy dialect for "
                               f"{url.drivername} is installed") from err
        except (sa_exc.SQLAlchemyError, ImportError) as err:
            raise self._error(err, f"cannot connect to {url.host}:{url.port}", True) from err

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None

    def _table(self, table: str) -> sa.Table:
        if table not in self._tables:
            try:
                self._tables[table] = sa.Table(table, sa.MetaData(), autoload_with=self.conn,
                                               schema=self.settings.get("schema"))
            except sa_exc.NoSuchTableError as err:
                raise SourceError(f"source {self.name}: table {table} does not exist") from err
            except sa_exc.SQLAlchemyError as err:
                raise self._error(err, f"table {table}") from err
        return self._tables[table]

    def _rows(self, query: sa.Executable, what: str) -> list[tuple]:
        assert self.conn is not None
        try:
            return [tuple(r) for r in self.conn.execute(query)]
        except sa_exc.SQLAlchemyError as err:
            raise self._error(err, what) from err

    def columns(self, table: str) -> list[Column]:
        return [Column(c.name.lower(), _pg_type(c.type)) for c in self._table(table).columns]

    def _cols(self, table: str, names: list[str]) -> list[sa.ColumnElement]:
        t = self._table(table)
        by_name = {c.name.lower(): c for c in t.columns}
        return [by_name[n] for n in names]

    def null_rows(self, table: str, columns: list[Column], column: str, keys: list[str],
                  limit: int = 10000) -> list[tuple]:
        cols = self._cols(table, [c.name for c in columns])
        (nullable,) = self._cols(table, [column])
        return self._rows(sa.select(*cols).where(nullable.is_(None)).limit(limit),
                          f"table {table}")

    def keys(self, table: str, keys: list[str]) -> list[tuple]:
        return self._rows(sa.select(*self._cols(table, keys)), f"table {table}")

    def key_counts(self, table: str, keys: list[str], values: list[tuple]) -> set[tuple]:
        cols = self._cols(table, keys)
        match = sa.or_(*(sa.and_(*(c == v for c, v in zip(cols, key, strict=True)))
                         for key in values))
        query = sa.select(*cols).where(match).group_by(*cols).having(sa.func.count() > 1)
        return {tuple(str(v) for v in r) for r in self._rows(query, f"table {table}")}

    def bounds(self, table: str, key: str, cursor: str | None) -> tuple:
        (k,) = self._cols(table, [key])
        top = sa.func.max(self._cols(table, [cursor])[0]) if cursor else sa.null()
        return self._rows(sa.select(sa.func.min(k), sa.func.max(k), top), f"table {table}")[0]

    def read(self, table: str, columns: list[Column], keys: list[str], cursor: str | None,
             after: Page, batch_rows: int, until: object = None) -> Iterator[list[tuple]]:
        """Keyset batches in (cursor, key) order, as MariaDBSource.read."""
        names = [c.name for c in columns]
        cols, order = self._cols(table, names), self._cols(table, ([cursor] if cursor else [])
                                                           + keys)
        index = [names.index(k) for k in keys]
        ci = names.index(cursor) if cursor else None
        page = after
        while True:
            where = [c.isnot(None) for c in order]
            if until is not None:
                (first_key,) = self._cols(table, keys[:1])
                where.append(first_key <= _typed(first_key, until))
            if cursor and page.cursor is not None and page.key is None:
                where.append(order[0] >= _typed(order[0], page.cursor))
            elif page.key is not None:
                values = ((page.cursor,) if cursor else ()) + tuple(page.key)
                where.append(_after(order, values))
            query = sa.select(*cols).where(*where).order_by(*order).limit(batch_rows)
            rows = self._rows(query, f"table {table}")
            if not rows:
                return
            yield rows
            last = rows[-1]
            page = Page(last[ci] if ci is not None else None, tuple(last[i] for i in index))
            if len(rows) < batch_rows:
                return
