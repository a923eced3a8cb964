"""make bench-governance: the standard-layer model (raw → std.enterprises: types, units, the
status code mapping, the USCC check digit and blank-address hard rules, one row per key, rejects
kept with their reasons, the new table swapped in) against the physical limit: one
hand-written CREATE TABLE AS SELECT with the same expressions, join and filters (no rejects,
no dedupe, no key). Then the topic model. A database of its own in the local cluster
(`cityops_bench_governance`, recreated each run). Writes bench/results/governance.json."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import psycopg

from cityops.settings import load_settings
from datafoundation.governance import run as runner
from datafoundation.governance import standards
from infra.db.admin import database_beside, ensure_migrated

RESULTS = Path(__file__).parent / "results" / "governance.json"
DB = "cityops_bench_governance"
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"

# digits-only USCC bodies, so the check digit is a weighted digit sum; one row in 20 carries a
# wrong check digit, one in 25 a blank address, one in 100 repeats the USCC of the (valid) row
# before it
SEED = f"""
CREATE SCHEMA raw_bench;
CREATE TABLE raw_bench.firms AS
SELECT n AS id, body || substr('{ALPHABET}', CASE WHEN n % 20 = 0 THEN (check_at % 31) + 1
           ELSE check_at END, 1) AS uscc,
       '濉溪县企业' || n || '有限公司' AS name,
       CASE WHEN n % 25 = 0 THEN '' ELSE '濉溪镇沱河路' || n % 999 || '号' END AS address,
       (ARRAY['A0111','C1311','E4710','G5431','I6510'])[1 + n % 5] AS industry_code,
       (n * 13.37)::numeric(18,2) AS registered_capital,
       (ARRAY['存续','在业','吊销','注销','迁出'])[1 + n % 5] AS status,
       '法人' || n % 997 AS legal_person, '0561-' || (6000000 + n % 999999) AS phone,
       date '2024-01-01' - (n % 9000) AS established, 0::smallint AS deleted,
       timestamp '2025-01-01' + n * interval '1 second' AS updated_at,
       now() AS _synced_at, 1::bigint AS _run_id, NULL::timestamptz AS _deleted_at
FROM (SELECT n, body, (31 - (SELECT sum(substr(body, i, 1)::int * ((3 ^ (i - 1))::numeric % 31))
             FROM generate_series(1, 17) i)::int % 31) % 31 + 1 AS check_at
      FROM (SELECT n, '91340621' || lpad((CASE WHEN n % 100 = 2 THEN n - 1 ELSE n END)::text, 9,
                   '0') AS body FROM generate_series(1, %(rows)s) n) b) s;
ALTER TABLE raw_bench.firms ADD PRIMARY KEY (id);
ANALYZE raw_bench.firms;
"""

LIMIT = """
CREATE TABLE std.limit_enterprises AS
SELECT upper(btrim(f.uscc))::char(18) AS uscc, btrim(f.name) AS name, btrim(f.address) AS address,
       left(f.industry_code, 1)::char(1) AS industry_section,
       substr(f.industry_code, 2, 2)::char(2) AS industry_division,
       (f.registered_capital / 10000)::numeric(18,4) AS registered_capital,
       m.code::char(1) AS status_code, btrim(f.legal_person) AS legal_person,
       regexp_replace(f.phone, '[^0-9-]', '', 'g') AS phone, f.established,
       (f.updated_at AT TIME ZONE 'Asia/Shanghai') AS updated_at
FROM raw_bench.firms f
JOIN value_maps m ON m.source = 'scjg_qydj' AND m.table_id = 'qydjzt'
     AND m.source_value = f.status
WHERE f._deleted_at IS NULL AND f.deleted = 0 AND uscc_valid(upper(btrim(f.uscc)))
  AND btrim(f.address) <> ''
"""


def _models(folder: Path) -> Path:
    (folder / "models").mkdir(parents=True)
    for name in ("std_enterprises.yaml", "topic_enterprises.yaml"):
        text = (standards.DEFAULT_DIR / "models" / name).read_text(encoding="utf-8")
        (folder / "models" / name).write_text(
            text.replace("raw_scjg_qydj.firms", "raw_bench.firms"), encoding="utf-8")
    return folder


def _timed(conn: psycopg.Connection, what) -> float:
    start = time.perf_counter()
    what()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    settings = load_settings()
    url = database_beside(settings.database_url.get_secret_value(), DB)
    ensure_migrated(settings.database_admin_url.get_secret_value(), url, fresh=True)
    with psycopg.connect(url, autocommit=True) as conn, tempfile.TemporaryDirectory() as tmp:
        conn.execute("INSERT INTO departments (id, name) VALUES ('scjgj', '市场监管局')")
        standards.load(conn)
        conn.execute(SEED.replace("%(rows)s", str(int(args.rows))))  # no params: % is modulo
        folder = _models(Path(tmp))
        limit = _timed(conn, lambda: conn.execute(LIMIT))
        model = _timed(conn, lambda: runner.run(conn, ["std_enterprises"], folder))
        topic = _timed(conn, lambda: runner.run(conn, ["topic_enterprises"], folder))
        out, rejected = conn.execute(
            "SELECT rows_out, rows_rejected FROM layer_model_runs WHERE model = "
            "'std_enterprises'").fetchone()
        kept = conn.execute("SELECT count(*) FROM std.limit_enterprises").fetchone()[0]
    result = {"rows": args.rows, "rows_out": out, "rows_rejected": rejected,
              "limit_rows": kept, "seconds": round(model, 2),
              "rows_per_s": round(args.rows / model), "limit_seconds": round(limit, 2),
              "ratio": round(limit / model, 3), "topic_seconds": round(topic, 2),
              "note": "machine shared with other engineers' tests while measured"}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
