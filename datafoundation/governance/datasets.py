"""The dataset register (migration 120): upsert a dataset and its fields. Every layer calls
it: the sync after each run (its raw table), the layer models after each build (std./topic.
tables), and helpers registering datasets by hand. A field given without title, element,
sensitivity or mask keeps what the register already holds, so a sync re-registering its raw
table never undoes the governance done on its columns since."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from cityops.errors import InvalidInput, NotFound

LAYERS = ("raw", "standard", "topic")
MASKS = ("none", "id_card", "phone", "name", "full")


@dataclass(frozen=True)
class Field:
    name: str
    data_type: str
    title: str | None = None
    element_id: str | None = None
    sensitivity: int | None = None
    mask_kind: str | None = None


def _field(value: Field | dict) -> Field:
    field = value if isinstance(value, Field) else Field(**value)
    if field.sensitivity is not None and not 0 <= field.sensitivity <= 3:
        raise InvalidInput(f"field {field.name}: sensitivity {field.sensitivity} is not 0-3")
    if field.mask_kind is not None and field.mask_kind not in MASKS:
        raise InvalidInput(f"field {field.name}: mask_kind {field.mask_kind!r} is not one "
                               f"of {', '.join(MASKS)}")
    return field


_UPSERT_DATASET = """
INSERT INTO datasets (id, name, layer, department_id, system_id, sync_id, primary_key,
                      description, update_cycle, resource_code)
VALUES (%(id)s, %(name)s, %(layer)s, %(department_id)s, %(system_id)s, %(sync_id)s,
        %(primary_key)s, COALESCE(%(description)s, ''), COALESCE(%(update_cycle)s, 'daily'),
        %(resource_code)s)
ON CONFLICT (id) DO UPDATE SET
    name = EXCLUDED.name, layer = EXCLUDED.layer, department_id = EXCLUDED.department_id,
    system_id = COALESCE(EXCLUDED.system_id, datasets.system_id),
    sync_id = COALESCE(EXCLUDED.sync_id, datasets.sync_id),
    primary_key = EXCLUDED.primary_key,
    description = COALESCE(%(description)s, datasets.description),
    update_cycle = COALESCE(%(update_cycle)s, datasets.update_cycle),
    resource_code = COALESCE(EXCLUDED.resource_code, datasets.resource_code),
    updated_at = now()
"""

_UPSERT_FIELD = """
INSERT INTO dataset_fields (dataset_id, name, position, data_type, title, element_id,
                            sensitivity, mask_kind)
VALUES (%(dataset)s, %(name)s, %(position)s, %(data_type)s, COALESCE(%(title)s, ''),
        %(element_id)s, COALESCE(%(sensitivity)s, 0), COALESCE(%(mask_kind)s, 'none'))
ON CONFLICT (dataset_id, name) DO UPDATE SET
    position = EXCLUDED.position, data_type = EXCLUDED.data_type,
    title = COALESCE(%(title)s, dataset_fields.title),
    element_id = COALESCE(%(element_id)s, dataset_fields.element_id),
    sensitivity = COALESCE(%(sensitivity)s, dataset_fields.sensitivity),
    mask_kind = COALESCE(%(mask_kind)s, dataset_fields.mask_kind)
"""


def register_dataset(conn: psycopg.Connection, id: str, name: str, layer: str,
                     department_id: str, *, system_id: int | None = None,
                     sync_id: int | None = None, primary_key: Sequence[str] = (),
                     description: str | None = None, update_cycle: str | None = None,
                     resource_code: str | None = None,
                     fields: Sequence[Field | dict] = ()) -> None:
    """Upsert dataset `id` ('<schema>.<table>') and its fields, in one transaction. Fields no
    longer listed are removed (a column gone from the table); an empty `fields` leaves the
    fields as they are."""
    if layer not in LAYERS:
        raise InvalidInput(f"dataset {id}: layer {layer!r} is not one of {', '.join(LAYERS)}")
    checked = [_field(f) for f in fields]
    with conn.transaction():
        conn.execute(_UPSERT_DATASET, {
            "id": id, "name": name, "layer": layer, "department_id": department_id,
            "system_id": system_id, "sync_id": sync_id, "primary_key": list(primary_key),
            "description": description, "update_cycle": update_cycle,
            "resource_code": resource_code})
        for position, field in enumerate(checked, 1):
            conn.execute(_UPSERT_FIELD, {"dataset": id, "position": position,
                                         **field.__dict__})
        if checked:
            conn.execute("DELETE FROM dataset_fields WHERE dataset_id = %s AND NOT "
                         "(name = ANY(%s))", (id, [f.name for f in checked]))


def register_raw(conn: psycopg.Connection, sync_id: int) -> str:
    """Register the raw table a sync loads (after its run) as a dataset of the raw layer:
    named after the sync's system, owned by the system's department, with the table's
    columns as they are in the database (bookkeeping columns included: lineage and quality
    read them). Returns the dataset id."""
    row = conn.execute(
        "SELECT sy.id, sy.slug, sy.name, sy.department_id, s.target_table, s.object, "
        "s.primary_key, s.schedule FROM syncs s JOIN sources so ON so.id = s.source_id "
        "JOIN systems sy ON sy.id = so.system_id WHERE s.id = %s", (sync_id,)).fetchone()
    if row is None:
        raise NotFound(f"sync {sync_id} does not exist")
    system_id, slug, system_name, department, table, obj, keys, schedule = row
    schema = f"raw_{slug}"
    columns = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum", (f'"{schema}"."{table}"',)).fetchall()
    dataset = f"{schema}.{table}"
    register_dataset(
        conn, dataset, f"{system_name} {obj}", "raw", department, system_id=system_id,
        sync_id=sync_id, primary_key=keys,
        update_cycle=None if schedule else "irregular",
        fields=[Field(name, data_type) for name, data_type in columns])
    from datafoundation.governance.lineage import record_sync  # it imports the models' parser

    record_sync(conn, sync_id, slug, obj, dataset, [name for name, _t in columns])
    return dataset
