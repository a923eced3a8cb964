"""bench-sync (e): the same MariaDB table loaded by dlt (its sql_database source, pyarrow
backend, into its postgres destination as CSV COPY, merge on the key with an incremental cursor
on updated_at): dlt at its fastest documented setting, measured beside (a) and (b) in one run.
dlt keeps its state (cursor, pending load packages) in a local pipelines folder and in
`_dlt_*` tables; the folder is made fresh for the run."""

from __future__ import annotations

import shutil
import time
from pathlib import Path


def dlt_load(maria_url: str, pg_url: str, work: Path, table: str = "firms") -> tuple[float, int]:
    """Seconds for dlt's first load of `table` into schema raw_dlt, and the rows it wrote."""
    import dlt
    from dlt.sources.sql_database import sql_table

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    pipeline = dlt.pipeline(pipeline_name="bench_sync", pipelines_dir=str(work),
                            destination=dlt.destinations.postgres(credentials=pg_url),
                            dataset_name="raw_dlt")
    resource = sql_table(credentials=maria_url, table=table, backend="pyarrow",
                         chunk_size=50_000,
                         incremental=dlt.sources.incremental("updated_at"))
    started = time.perf_counter()
    pipeline.run(resource, write_disposition={"disposition": "merge", "strategy": "upsert"},
                 primary_key="id", loader_file_format="csv")
    seconds = time.perf_counter() - started
    with pipeline.sql_client() as client:
        rows = client.execute_sql(f"SELECT count(*) FROM raw_dlt.{table}")[0][0]
    return seconds, rows
