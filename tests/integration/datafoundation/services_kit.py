"""For the data-service, catalogue and panorama tests: one enterprise table of the simulated
市场监管局 registry synced into the raw layer and registered as a governed dataset, with its
sensitive fields marked. No tests here."""

from __future__ import annotations

import psycopg

from datafoundation.runner import run_sync
from simulators.departments import enterprise_registry
from tests.integration.datafoundation.conftest import SECRET_KEY, add_sync

# field -> (title, sensitivity, mask kind)
FIELDS = {
    "id": ("序号", 0, "none"), "uscc": ("统一社会信用代码", 0, "none"),
    "name": ("企业名称", 0, "none"), "address": ("住所", 1, "none"),
    "industry_code": ("行业代码", 0, "none"), "registered_capital": ("注册资本", 1, "none"),
    "status": ("登记状态", 0, "none"), "legal_person": ("法定代表人", 2, "name"),
    "phone": ("联系电话", 2, "phone"), "established": ("成立日期", 0, "none"),
    "updated_at": ("更新时间", 0, "none"),
}


def synced_dataset(mariadb, source_id: int, database_url: str, table: str,
                   rows: int = 300) -> str:
    """Seed `table` in the registry, sync it to the raw layer (which registers the dataset),
    mark its sensitive fields; its dataset id."""
    conn = mariadb.connect()
    enterprise_registry.seed(conn, rows, table=table)
    conn.close()
    sync = add_sync(database_url, source_id, table, deletes="soft", soft_delete_column="deleted")
    run_sync(database_url, SECRET_KEY, sync)
    dataset = f"raw_scjg_registry.{table}"
    with psycopg.connect(database_url, autocommit=True) as db:  # the sync registered it
        for name, (title, sensitivity, kind) in FIELDS.items():
            db.execute("UPDATE dataset_fields SET title = %s, sensitivity = %s, mask_kind = %s"
                       " WHERE dataset_id = %s AND name = %s",
                       (title, sensitivity, kind, dataset, name))
    return dataset


def raw(database_url: str, dataset: str, where: str = "true") -> dict[int, dict]:
    """The raw layer's live rows, read independently of the service."""
    with psycopg.connect(database_url) as db, db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(f"SELECT * FROM {dataset} WHERE _deleted_at IS NULL AND {where}")
        return {r["id"]: r for r in cur.fetchall()}
