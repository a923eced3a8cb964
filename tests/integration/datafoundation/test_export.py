"""A sync exported as a DataX job and a SeaTunnel config: the source, the raw-layer target,
the incremental WHERE from the committed cursor, and no password anywhere. (The engines
themselves are not run here: docs/data-foundation.md.)"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from datafoundation.runner import run_sync
from tests.integration.datafoundation.conftest import SECRET_KEY, add_sync


def test_datax_and_seatunnel_exports(mariadb, registry_source, database_url, firms_table,
                                     processes):
    sync = add_sync(database_url, registry_source, firms_table)
    run_sync(database_url, SECRET_KEY, sync)
    datax = processes.run("sync", "export", str(sync), "--engine", "datax")
    seatunnel = processes.run("sync", "export", str(sync))
    db_password = urlsplit(database_url).password
    for text in (datax, seatunnel):
        assert mariadb.password not in text
        assert not db_password or db_password not in text
        assert "${SOURCE_PASSWORD}" in text and "${TARGET_PASSWORD}" in text
    content = json.loads(datax)["job"]["content"][0]
    reader, writer = content["reader"], content["writer"]
    assert reader["name"] == "mysqlreader" and reader["parameter"]["splitPk"] == "id"
    assert reader["parameter"]["connection"][0] == {
        "table": [firms_table],
        "jdbcUrl": [f"jdbc:mysql://127.0.0.1:{mariadb.port}/registry"]}
    assert reader["parameter"]["where"].startswith("updated_at > '20")
    assert writer["name"] == "postgresqlwriter"
    assert writer["parameter"]["connection"][0]["table"] == [
        f"raw_scjg_registry.{firms_table}"]
    assert 'job.mode = "BATCH"' in seatunnel
    assert f'table = "raw_scjg_registry.{firms_table}"' in seatunnel
    assert 'primary_keys = ["id"]' in seatunnel
    assert f"FROM {firms_table} WHERE updated_at > '20" in seatunnel
