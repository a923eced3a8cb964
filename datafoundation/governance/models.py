"""Layer models as data: one YAML file per model under governance/models/, versioned by the
data bureau. A `mapping` model (raw → standard) lists its columns with the expression, the
data element and any code mapping; a `sql` model (standard → topic) is one SELECT whose
column lineage sqlglot reads. Both name their upstream datasets, so the platform knows what
to run after which sync and what lineage to record."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
import sqlglot
import yaml
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cityops.errors import InvalidInput, NotFound

DATASET = r"^[a-z][a-z0-9_]{0,62}\.[a-z][a-z0-9_]{0,62}$"
NAME = r"^[a-z][a-z0-9_]{0,62}$"


class CodeMap(BaseModel):
    """The column's value is a source code mapped onto a code table by value_maps."""
    model_config = ConfigDict(extra="forbid")
    column: str = Field(pattern=NAME)     # the upstream column holding the source's code
    table: str = Field(pattern=NAME)      # the code table
    source: str = Field(pattern=NAME)     # whose codes: the value-map set (a system slug)


class Column(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME)
    type: str = "text"
    title: str = ""
    element: str | None = None
    sql: str | None = None               # over the upstream's columns; default: same name
    sources: list[str] = []              # upstream columns it reads; default: those in sql
    map: CodeMap | None = None
    code_table: str | None = None        # the value must be a code of this table


class Reject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    when: str = Field(min_length=1)      # SQL over the upstream's columns: true = reject
    reason: str = Field(min_length=1)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME)
    version: int = Field(ge=1)
    layer: str = Field(pattern="^(standard|topic)$")
    target: str = Field(pattern=DATASET)
    title: str = Field(min_length=1)
    department: str
    update_cycle: str = "daily"
    description: str = ""
    key: list[str] = Field(min_length=1)
    # mapping models
    source: str | None = Field(None, pattern=DATASET)   # the one upstream dataset
    where: str | None = None
    latest_by: str | None = None         # one row per key: the first in this order
    reject: list[Reject] = []
    columns: list[Column] = []
    # sql models
    sql: str | None = None

    @model_validator(mode="after")
    def _kind(self) -> Model:
        if (self.sql is None) == (self.source is None):
            raise ValueError("give either source (a mapping model) or sql (a SQL model)")
        if self.sql is None and not self.columns:
            raise ValueError("a mapping model lists its columns")
        if self.target.split(".")[0] != {"standard": "std", "topic": "topic"}[self.layer]:
            raise ValueError(f"a {self.layer} model's target is in schema "
                             f"{'std' if self.layer == 'standard' else 'topic'}")
        names = [c.name for c in self.columns]
        missing = [k for k in self.key if self.sql is None and k not in names]
        if missing:
            raise ValueError(f"key {', '.join(missing)} is not among the columns")
        return self

    @property
    def upstream(self) -> list[str]:
        if self.source is not None:
            return [self.source]
        return sql_tables(self.sql or "")


def sql_tables(query: str) -> list[str]:
    """The schema-qualified tables a SQL model reads (its upstream datasets); code tables and
    other platform tables in the public schema are not datasets."""
    found = []
    for table in sqlglot.parse_one(query, read="postgres").find_all(sqlglot.exp.Table):
        if table.db and f"{table.db}.{table.name}" not in found:
            found.append(f"{table.db}.{table.name}")
    return found


def columns_read(column: Column) -> list[str]:
    """The upstream columns a mapping column reads: declared, else the code map's, else the
    columns its expression names (sqlglot), else its own name."""
    if column.sources:
        return column.sources
    if column.map is not None:
        return [column.map.column]
    if column.sql is None:
        return [column.name]
    expr = sqlglot.parse_one(column.sql, read="postgres")
    return list(dict.fromkeys(c.name for c in expr.find_all(sqlglot.exp.Column)))


def parse(path: Path) -> tuple[Model, str]:
    """A model file, validated; returns it with the file's digest. Errors name the file and
    the field."""
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as err:
        raise InvalidInput(f"model file {path}: {err}") from err
    try:
        model = Model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = "".join(f"{p}: " if i == len(first["loc"]) - 1 else f"{p}."
                        for i, p in enumerate(first["loc"]))
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidInput(f"model file {path}: {where}{message}") from err
    if model.sql is not None:
        try:
            sqlglot.parse_one(model.sql, read="postgres")
        except sqlglot.errors.ParseError as err:
            raise InvalidInput(f"model {model.name} ({path}): sql does not parse: {err}") from err
    return model, hashlib.sha256(text.encode()).hexdigest()


def discover(folder: Path) -> dict[str, tuple[Model, str, Path]]:
    found: dict[str, tuple[Model, str, Path]] = {}
    for path in sorted((folder / "models").glob("*.yaml")):
        model, digest = parse(path)
        if model.name in found:
            raise InvalidInput(f"model {model.name} is declared twice: {found[model.name][2]} "
                               f"and {path}")
        found[model.name] = (model, digest, path)
    return found


def record(conn: psycopg.Connection, model: Model, digest: str, path: Path) -> None:
    """The platform's record of the model's version (the file is the truth)."""
    conn.execute(
        "INSERT INTO layer_models (name, layer, target, upstream, version, digest, file, "
        "declaration) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE "
        "SET layer = EXCLUDED.layer, target = EXCLUDED.target, upstream = EXCLUDED.upstream, "
        "version = EXCLUDED.version, digest = EXCLUDED.digest, file = EXCLUDED.file, "
        "declaration = EXCLUDED.declaration, loaded_at = now()",
        (model.name, model.layer, model.target, model.upstream, model.version, digest,
         str(path), Jsonb(model.model_dump(exclude_none=True))))


def order(models: dict[str, tuple[Model, str, Path]], wanted: list[str]) -> list[str]:
    """`wanted` and nothing else, upstream first (a model reading another's target after it)."""
    for name in wanted:
        if name not in models:
            raise NotFound(f"model {name} is not declared under governance/models/")
    producer = {m.target: name for name, (m, _d, _p) in models.items()}
    done: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in path:
            raise InvalidInput(f"models form a cycle: {' → '.join((*path, name))}")
        for dataset in models[name][0].upstream:
            if dataset in producer and producer[dataset] in wanted:
                visit(producer[dataset], (*path, name))
        done.append(name)

    for name in wanted:
        visit(name, ())
    return done
