"""Standards as data: the 数据元 register, code tables and each source's value mapping, loaded
from the files under governance/standards/ (which the data bureau edits and versions) into
the database in one transaction: a bad file changes nothing. Dataset fields are mapped to
elements here, and the element's sensitivity and mask flow to the field."""

from __future__ import annotations

import csv
from pathlib import Path

import psycopg
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cityops.errors import InvalidInput, NotFound

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "governance"


class Element(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,31}$")
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    definition: str = Field(min_length=1)
    data_type: str = Field(min_length=1)
    data_format: str = Field(min_length=1)
    value_domain: str = Field(min_length=1)
    code_table: str | None = None
    sensitivity: int = Field(0, ge=0, le=3)
    mask_kind: str = Field("none", pattern="^(none|id_card|phone|name|full)$")
    unit: str = ""
    source_org: str = ""
    synonyms: list[str] = []
    version: str = "1.0"


class CodeTable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    name: str = Field(min_length=1)
    standard: str = ""
    version: str = ""
    file: str


def _yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise InvalidInput(f"{path}: {err}") from err


def _parse(cls: type[BaseModel], path: Path, items: object) -> list:
    if not isinstance(items, list):
        raise InvalidInput(f"{path}: expected a list of entries")
    parsed = []
    for n, item in enumerate(items, 1):
        try:
            parsed.append(cls.model_validate(item))
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            name = item.get("id", f"entry {n}") if isinstance(item, dict) else f"entry {n}"
            raise InvalidInput(f"{path}: {name}: {where}: {first['msg']}") from err
    return parsed


def _codes(path: Path) -> list[tuple[str, str, str | None, int]]:
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as err:
        raise InvalidInput(f"{path}: {err}") from err
    if not rows or set(rows[0]) != {"code", "name", "parent", "level"}:
        raise InvalidInput(f"{path}: expected the columns code,name,parent,level")
    return [(r["code"], r["name"], r["parent"] or None, int(r["level"] or 1)) for r in rows]


def _load_tables(conn: psycopg.Connection, folder: Path) -> int:
    path = folder / "code_tables.yaml"
    tables = _parse(CodeTable, path, _yaml(path))
    for table in tables:
        codes = _codes(folder / table.file)
        conn.execute(
            "INSERT INTO code_tables (id, name, standard, version) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, standard = "
            "EXCLUDED.standard, version = EXCLUDED.version, loaded_at = now()",
            (table.id, table.name, table.standard, table.version))
        conn.execute("DELETE FROM code_values WHERE table_id = %s AND NOT (code = ANY(%s))",
                     (table.id, [c[0] for c in codes]))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO code_values (table_id, code, name, parent, level) VALUES "
                "(%s, %s, %s, %s, %s) ON CONFLICT (table_id, code) DO UPDATE SET name = "
                "EXCLUDED.name, parent = EXCLUDED.parent, level = EXCLUDED.level",
                [(table.id, *c) for c in codes])
    return len(tables)


def _load_elements(conn: psycopg.Connection, folder: Path) -> int:
    path = folder / "elements.yaml"
    elements = _parse(Element, path, _yaml(path))
    known = {r[0] for r in conn.execute("SELECT id FROM code_tables")}
    for e in elements:
        if e.code_table is not None and e.code_table not in known:
            raise InvalidInput(f"{path}: {e.id}: code_table {e.code_table} is not a loaded "
                               "code table")
        values = e.model_dump()
        cols = list(values)
        conn.execute(
            f"INSERT INTO data_elements ({', '.join(cols)}) VALUES "
            f"({', '.join(['%s'] * len(cols))}) ON CONFLICT (id) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in cols[1:]) + ", updated_at = now()",
            list(values.values()))
    # a field follows its element: a changed sensitivity reaches every mapped field
    conn.execute("UPDATE dataset_fields f SET sensitivity = e.sensitivity, mask_kind = "
                 "e.mask_kind FROM data_elements e WHERE f.element_id = e.id")
    return len(elements)


def _load_maps(conn: psycopg.Connection, folder: Path) -> int:
    path = folder / "value_maps.yaml"
    sets = _yaml(path) or {}
    if not isinstance(sets, dict):
        raise InvalidInput(f"{path}: expected source: {{code table: {{value: code}}}}")
    count = 0
    for source, tables in sets.items():
        for table, mapping in (tables or {}).items():
            known = {r[0] for r in conn.execute(
                "SELECT code FROM code_values WHERE table_id = %s", (table,))}
            if not known:
                raise InvalidInput(f"{path}: {source}: {table} is not a loaded code table")
            for value, code in mapping.items():
                if str(code) not in known:
                    raise InvalidInput(f"{path}: {source}: {table}: {value!r} maps to code "
                                       f"{code!r}, which is not in code table {table}")
            conn.execute("DELETE FROM value_maps WHERE source = %s AND table_id = %s",
                         (source, table))
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO value_maps (source, table_id, source_value, code) "
                                "VALUES (%s, %s, %s, %s)",
                                [(source, table, str(v), str(c)) for v, c in mapping.items()])
            count += len(mapping)
    return count


def load(conn: psycopg.Connection, folder: Path = DEFAULT_DIR) -> dict[str, int]:
    """Load governance/standards/ (code tables, then elements, then value maps) in one
    transaction; returns how many of each."""
    standards = folder / "standards"
    with conn.transaction():
        return {"code_tables": _load_tables(conn, standards),
                "elements": _load_elements(conn, standards),
                "value_maps": _load_maps(conn, standards)}


def map_field(conn: psycopg.Connection, dataset_id: str, field: str, element_id: str) -> None:
    """Map a dataset field to a data element; the field takes the element's sensitivity and
    mask (masking in every read follows)."""
    element = conn.execute("SELECT sensitivity, mask_kind FROM data_elements WHERE id = %s",
                           (element_id,)).fetchone()
    if element is None:
        raise NotFound(f"data element {element_id} does not exist")
    done = conn.execute(
        "UPDATE dataset_fields SET element_id = %s, sensitivity = %s, mask_kind = %s "
        "WHERE dataset_id = %s AND name = %s", (element_id, *element, dataset_id, field))
    if done.rowcount == 0:
        raise NotFound(f"dataset {dataset_id} has no field {field}")
