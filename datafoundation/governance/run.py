"""Running layer models: each after its upstream, each in one transaction. A model whose
upstream failed (a sync's last run, or the model building it) is skipped with the reason and
its target keeps its previous contents, as do the models downstream of it."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from cityops.errors import ModelFailed, PlatformError
from datafoundation.catalogue.governed import after_build as catalogue_after_build
from datafoundation.governance import lineage, models
from datafoundation.governance.build import build_mapping, build_sql
from datafoundation.governance.datasets import Field, register_dataset
from datafoundation.governance.models import Model
from datafoundation.governance.standards import DEFAULT_DIR
from datafoundation.quality import after_load

log = logging.getLogger(__name__)


def upstream_failure(conn: psycopg.Connection, dataset: str) -> str | None:
    """Why `dataset` cannot be read now, or None: the model building it did not succeed last
    time, or the sync loading it did not, or it does not exist."""
    producer = conn.execute(
        "SELECT m.name, r.state, r.error FROM layer_models m LEFT JOIN LATERAL (SELECT state, "
        "error FROM layer_model_runs WHERE model = m.name AND state <> 'running' ORDER BY id "
        "DESC LIMIT 1) r ON true WHERE m.target = %s", (dataset,)).fetchone()
    if producer is not None:
        name, state, error = producer
        if state != "succeeded":
            return f"its model {name} {state or 'has not run'}" + (f": {error}" if error else "")
        return None
    sync = conn.execute(
        "SELECT d.sync_id, r.id, r.state, r.error FROM datasets d LEFT JOIN LATERAL (SELECT id, "
        "state, error FROM sync_runs WHERE sync_id = d.sync_id ORDER BY id DESC LIMIT 1) r "
        "ON true WHERE d.id = %s AND d.sync_id IS NOT NULL", (dataset,)).fetchone()
    if sync is not None and sync[2] != "succeeded":
        return (f"its sync {sync[0]} run {sync[1]} {sync[2] or 'has not run'}"
                + (f": {sync[3]}" if sync[3] else ""))
    if conn.execute("SELECT to_regclass(%s)", (dataset,)).fetchone()[0] is None:
        return "it does not exist"
    return None


def _fields(conn: psycopg.Connection, model: Model) -> list[Field]:
    """The target's columns as built, with the declared titles and elements; an element's
    sensitivity and mask go with it."""
    declared = {c.name: c for c in model.columns}
    built = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
        "to_regclass(%s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (model.target,)).fetchall()
    fields = []
    for name, data_type in built:
        column = declared.get(name)
        element = column.element if column else None
        level = None
        if element is not None:
            level = conn.execute("SELECT sensitivity, mask_kind FROM data_elements WHERE "
                                 "id = %s", (element,)).fetchone()
            if level is None:
                raise ModelFailed(f"model {model.name} (target {model.target}): column {name}: "
                                  f"data element {element} is not loaded (cityops governance "
                                  "load)")
        fields.append(Field(name, data_type, column.title if column else "", element,
                            *(level or (None, None))))
    return fields


def _build(conn: psycopg.Connection, model: Model, run_id: int) -> dict:
    with conn.transaction():
        built = (build_mapping if model.sql is None else build_sql)(conn, model, run_id)
        register_dataset(conn, model.target, model.title, model.layer, model.department,
                         primary_key=model.key, description=model.description,
                         update_cycle=model.update_cycle, fields=_fields(conn, model))
        lineage.record_model(conn, model)
        conn.execute(
            "UPDATE layer_model_runs SET state = 'succeeded', finished_at = now(), rows_in = %s, "
            "rows_out = %s, rows_rejected = %s, unmapped = %s WHERE id = %s",
            (built["rows_in"], built["rows_out"], built["rows_rejected"],
             Jsonb(built["unmapped"]) if built["unmapped"] else None, run_id))
    return built


def run_model(conn: psycopg.Connection, model: Model, digest: str, path: Path) -> int:
    """Build one model now (conn in autocommit); returns the run id. Raises ModelFailed naming
    the model, its target and the cause; the run is recorded either way."""
    models.record(conn, model, digest, path)
    run_id = conn.execute("INSERT INTO layer_model_runs (model, version, digest) VALUES "
                          "(%s, %s, %s) RETURNING id",
                          (model.name, model.version, digest)).fetchone()[0]
    where = f"model {model.name} (target {model.target})"
    state, detail = "failed", ""
    try:
        for dataset in model.upstream:
            why = upstream_failure(conn, dataset)
            if why is not None:
                state, detail = "skipped", f"{where}: upstream {dataset} failed: {why}"
                raise ModelFailed(detail)
        built = _build(conn, model, run_id)
        log.info("%s built: %s", where, built)
        after_load(conn, model.target, "layer")  # 数据质量: the target's rules, if any
        catalogue_after_build(conn, model.target)  # 一本账: its catalogue entry kept current
        return run_id
    except psycopg.Error as err:
        detail = f"{where}: {str(err).splitlines()[0]}"
        raise ModelFailed(detail) from err
    except PlatformError as err:
        detail = detail or (err.detail if err.detail.startswith(where) else
                            f"{where}: {err.detail}")
        raise ModelFailed(detail) from err
    finally:
        if detail:
            conn.execute("UPDATE layer_model_runs SET state = %s, error = %s, finished_at = "
                         "now() WHERE id = %s", (state, detail, run_id))
            log.warning("%s", detail)


def run(conn: psycopg.Connection, names: list[str] | None = None,
        folder: Path = DEFAULT_DIR) -> dict[str, str]:
    """Run the named models (all when None) in upstream order; a failure does not stop the
    others (those downstream of it are skipped by their own upstream check). Returns each
    model's outcome; raises the first failure after all have been tried."""
    declared = models.discover(folder)
    outcome: dict[str, str] = {}
    first: ModelFailed | None = None
    for name in models.order(declared, names or list(declared)):
        model, digest, path = declared[name]
        try:
            run_id = run_model(conn, model, digest, path)
            outcome[name] = f"run {run_id} succeeded"
        except ModelFailed as err:
            outcome[name] = err.detail
            first = first or err
    if first is not None:
        raise ModelFailed(first.detail, outcome=outcome)
    return outcome


def dependents(conn: psycopg.Connection, dataset: str) -> list[tuple[str, Path]]:
    """The models reading `dataset`, as the platform last recorded them (a run or `cityops
    governance load` records each model's file): what to run after it changes, with the
    governance folder each came from."""
    return [(name, Path(file).parent.parent) for name, file in conn.execute(
        "SELECT name, file FROM layer_models WHERE %s = ANY(upstream) ORDER BY name",
        (dataset,))]


def record_all(conn: psycopg.Connection, folder: Path = DEFAULT_DIR) -> list[str]:
    """Record every declared model's version and file without running it."""
    declared = models.discover(folder)
    with conn.transaction():
        for model, digest, path in declared.values():
            models.record(conn, model, digest, path)
    return list(declared)
