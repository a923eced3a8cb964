"""What an indicator's query may be: one SELECT over the `metrics` views, with the period as
`:start` and `:end`. Parsed (sqlglot, PostgreSQL dialect) before it is stored, so a query
naming `users`, `audit_log` or a source's secret is refused with the table named; it also runs
read-only with a time-out (indicators/compute.py)."""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp

from cityops.errors import InvalidInput

SCHEMA = "metrics"
PARAMS = ("start", "end")
# server functions that reach outside the query's rows: files, other servers, settings, time
_REFUSED_FUNCTIONS = re.compile(r"^(pg_|lo_|dblink|set_config|current_setting|txid_|query_to)",
                                re.IGNORECASE)
_PARAM = re.compile(r"(?<![:\w]):(start|end)\b")


def check_query(query: str) -> None:
    try:
        statements = [s for s in sqlglot.parse(query, read="postgres") if s is not None]
    except sqlglot.errors.ParseError as err:
        raise InvalidInput(f"the query does not parse: {str(err).splitlines()[0]}") from err
    if len(statements) != 1:
        raise InvalidInput(f"the query must be one statement, not {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise InvalidInput(f"the query must be a SELECT, not {tree.key.upper()}")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if table.name in ctes and not table.db:
            continue
        if table.db != SCHEMA:
            named = f"{table.db}.{table.name}" if table.db else table.name
            raise InvalidInput(f"the query may read only the {SCHEMA}.* views, not {named}")
    for func in tree.find_all(exp.Anonymous, exp.Func):
        name = func.name if isinstance(func, exp.Anonymous) else func.sql_name()
        if _REFUSED_FUNCTIONS.match(name or ""):
            raise InvalidInput(f"the query may not call {name}()")
    missing = [p for p in PARAMS if not re.search(rf"(?<![:\w]):{p}\b", query)]
    if missing:
        raise InvalidInput(f"the query must use the period: :{' and :'.join(missing)} missing")


def to_psycopg(query: str) -> str:
    """`:start`/`:end` as psycopg's named parameters; a literal % doubled."""
    return _PARAM.sub(r"%(\1)s", query.replace("%", "%%"))
