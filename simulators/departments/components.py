"""城管局's 部件 (city component) inventory: its own PostgreSQL database in the project's
cluster, a table of manholes, lamps, hydrants... that changes over time."""

from __future__ import annotations

import random
from datetime import datetime

import psycopg

KINDS = {"0101": "上水井盖", "0102": "污水井盖", "0201": "路灯", "0301": "消火栓",
         "0401": "垃圾箱", "0501": "交通信号灯"}
TABLE = """CREATE TABLE IF NOT EXISTS components (
    id          bigint PRIMARY KEY,
    code        text NOT NULL,
    kind_code   text NOT NULL,
    kind_name   text NOT NULL,
    grid        text NOT NULL,
    lon         double precision NOT NULL,
    lat         double precision NOT NULL,
    status      text NOT NULL,
    updated_at  timestamp NOT NULL
)"""


def create_database(admin_url: str, name: str) -> str:
    """A database of its own; returns its URL (same server and role as `admin_url`)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin_url.rpartition('/')[0]}/{name}"


def _row(rng: random.Random, n: int, now: datetime) -> tuple:
    kind = rng.choice(list(KINDS))
    return (n, f"340621{kind}{n:08d}", kind, KINDS[kind], f"340621001{rng.randint(1, 256):03d}",
            round(116.76 + rng.random() * 0.1, 6), round(33.91 + rng.random() * 0.1, 6),
            rng.choice(["完好", "破损", "丢失"]), now)


def seed(url: str, rows: int, seed_value: int = 16) -> None:
    rng = random.Random(seed_value)
    now = datetime.now()
    with psycopg.connect(url) as conn:
        conn.execute(TABLE)
        with conn.cursor().copy("COPY components FROM STDIN") as copy:
            for n in range(1, rows + 1):
                copy.write_row(_row(rng, n, now))


def mutate(url: str, inserts: int = 3, updates: int = 3, deletes: int = 1,
           seed_value: int | None = None) -> dict[str, list[int]]:
    rng = random.Random(seed_value)
    now = datetime.now()
    with psycopg.connect(url) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM components ORDER BY id")]
        picked = rng.sample(ids, min(len(ids), updates + deletes))
        for cid in picked[:updates]:
            conn.execute("UPDATE components SET status = '破损', updated_at = %s WHERE id = %s",
                         (now, cid))
        for cid in picked[updates:]:
            conn.execute("DELETE FROM components WHERE id = %s", (cid,))
        new = list(range(max(ids, default=0) + 1, max(ids, default=0) + 1 + inserts))
        for cid in new:
            conn.execute("INSERT INTO components VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                         _row(rng, cid, now))
    return {"inserted": new, "updated": picked[:updates], "deleted": picked[updates:]}
