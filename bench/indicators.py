"""`make bench-indicators`: 1,000 indicators over a year of events computed in one run, against
the same 1,000 statements run directly by `psql -f` (the limit), side by side in one run.

The bench database `cityops_bench_indicators` holds a year of city events (200,000 by default,
generated once). The 1,000 indicators are monthly, built from templates (counts, rates and
averages, with and without a breakdown by department or category, each restricted to one
category or channel so they differ), and each computes the last complete month. The platform's
path is indicators/compute.py (guard, read-only transaction, time-out, values, lights, runs);
the limit is the statements alone. Writes bench/results/indicators.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from cityevents.calendar import COUNTY_TZ
from cityops.settings import load_settings
from indicators import compute, store
from indicators.guard import to_psycopg
from indicators.model import IndicatorDef, last_complete, shift
from infra.db.admin import database_beside, ensure_migrated

REPO = Path(__file__).parents[1]
RESULTS = REPO / "bench" / "results" / "indicators.json"
DATABASE = "cityops_bench_indicators"
NOW = datetime(2026, 12, 2, 10, tzinfo=COUNTY_TZ)
TEMPLATES = [
    ("SELECT count(*) FROM metrics.events WHERE {f} AND reported_at >= :start"
     " AND reported_at < :end", "none", "件", "down"),
    ("SELECT department_id, count(*) FROM metrics.events WHERE {f} AND reported_at >= :start"
     " AND reported_at < :end GROUP BY ROLLUP (department_id)", "department", "件", "down"),
    ("SELECT 100.0 * count(*) FILTER (WHERE disposed_on_time) / nullif(count(*), 0)"
     " FROM metrics.events WHERE {f} AND disposed_at >= :start AND disposed_at < :end",
     "none", "%", "up"),
    ("SELECT category_minor, 100.0 * count(*) FILTER (WHERE state = 'closed')"
     " / nullif(count(*), 0) FROM metrics.events WHERE {f} AND reported_at >= :start"
     " AND reported_at < :end GROUP BY ROLLUP (category_minor)", "category", "%", "up"),
    ("SELECT avg(extract(epoch FROM disposed_at - reported_at) / 3600) FROM metrics.events"
     " WHERE {f} AND disposed_at >= :start AND disposed_at < :end", "none", "h", "down"),
]


def prepare(admin_url: str, url: str, events: int) -> None:
    ensure_migrated(admin_url, url)
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT count(*) FROM events").fetchone()[0] >= events:
            return
        print(f"generating a year of {events} events once...", flush=True)
        conn.execute("INSERT INTO departments (id, name) SELECT 'd' || n, '部门' || n"
                     " FROM generate_series(1, 12) n ON CONFLICT DO NOTHING")
        conn.execute("INSERT INTO event_categories (code, kind, major, minor) SELECT"
                     " 'B' || lpad(n::text, 2, '0'), 'incident', '大类', '小类' || n"
                     " FROM generate_series(1, 40) n ON CONFLICT DO NOTHING")
        conn.execute(
            "INSERT INTO events (channel, reporter, category_code, urgency, description,"
            " reported_at, state, department_id, disposed_at, disposed_on_time, rework_count)"
            " SELECT (ARRAY['hotline','inspector','citizen','sensor'])[1 + n %% 4], 'bench',"
            " 'B' || lpad((1 + n %% 40)::text, 2, '0'), 'normal', 'bench', t,"
            " (ARRAY['closed','processing','feedback'])[1 + n %% 3], 'd' || (1 + n %% 12),"
            " t + interval '30 hours', n %% 5 <> 0, (n %% 17 = 0)::int"
            " FROM (SELECT n, %s::timestamptz - random() * interval '365 days' AS t"
            "       FROM generate_series(1, %s) n) s",
            (NOW.astimezone(UTC), events))
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE events")


def definitions(count: int) -> list[IndicatorDef]:
    filters = [f"category_code = 'B{c:02d}'" for c in range(1, 41)]
    filters += [f"channel = '{ch}'" for ch in ("hotline", "inspector", "citizen", "sensor")]
    out = []
    for i in range(count):
        query, breakdown, unit, direction = TEMPLATES[i % len(TEMPLATES)]
        f = filters[(i // len(TEMPLATES)) % len(filters)]
        out.append(IndicatorDef(
            code=f"BN.{i // 1000:02d}.{i % 1000:03d}", name=f"bench {i}", class_code="BN",
            definition="bench", query=query.format(f=f), breakdown=breakdown, unit=unit,
            frequency="monthly", direction=direction))
    return out


async def load(url: str, defs: list[IndicatorDef]) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("INSERT INTO indicator_classes (code, name) VALUES ('BN', 'bench')"
                           " ON CONFLICT DO NOTHING")
        for d in defs:
            await store.upsert(conn, d, "bench")


async def platform(url: str, codes: list[str], start: datetime) -> tuple[float, int]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        inds = {i["code"]: i for i in await compute.enabled(conn)}
        began = time.perf_counter()
        outcomes = await compute.compute_many(conn, [(inds[c], start) for c in codes], NOW)
        return time.perf_counter() - began, sum(o.status != "ok" for o in outcomes)


def direct(url: str, defs: list[IndicatorDef], start: datetime) -> float:
    end = shift("monthly", start, COUNTY_TZ)
    with psycopg.connect(url) as conn, tempfile.NamedTemporaryFile("w", suffix=".sql") as f:
        f.write("SET TimeZone = 'Asia/Shanghai';\n\\o /dev/null\n")
        with psycopg.ClientCursor(conn) as cur:  # mogrify: the statements as psql gets them
            for d in defs:
                sql = cur.mogrify(to_psycopg(d.query), {"start": start, "end": end})
                f.write(sql + ";\n")
        f.flush()
        began = time.perf_counter()
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", f.name],
                       check=True)
        return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--indicators", type=int, default=1000)
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    settings = load_settings()
    url = database_beside(settings.database_url.get_secret_value(), DATABASE)
    prepare(settings.database_admin_url.get_secret_value(), url, args.events)
    defs = definitions(args.indicators)
    asyncio.run(load(url, defs))
    start = last_complete("monthly", NOW, COUNTY_TZ)
    direct(url, defs, start)  # warm the cache for both
    limit_s = direct(url, defs, start)
    ours_s, failed = asyncio.run(platform(url, [d.code for d in defs], start))
    result = {"indicators": len(defs), "events": args.events, "seconds": round(ours_s, 2),
              "direct_seconds": round(limit_s, 2), "ratio": round(limit_s / ours_s, 3),
              "failed": failed, "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{len(defs)} indicators of the month before {NOW:%Y-%m-%d} over {args.events} events"
          f" (a year): platform {ours_s:.2f} s, psql -f {limit_s:.2f} s,"
          f" ratio {limit_s / ours_s:.2f} (target >= 0.50; all in < 60 s), {failed} failed")


if __name__ == "__main__":
    main()
