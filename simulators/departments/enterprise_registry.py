"""市场监管局's enterprise registry: firms in a MariaDB table, with the dirt a real register has
(bad 统一社会信用代码 check digits, blank addresses, the same firm entered twice)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pymysql

# GB 32100-2015: 31 characters (no I, O, S, V, Z); weights are 3**i mod 31
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]

INDUSTRIES = ["A0111", "C1311", "C3011", "E4710", "F5123", "G5431", "H6110", "I6510", "L7212"]
STREETS = ["濉溪镇沱河路", "韩村镇淮海路", "百善镇幸福路", "临涣镇古城街", "南坪镇人民路"]
STATUSES = ["存续", "在业", "吊销", "注销", "迁出"]

TABLE = """CREATE TABLE IF NOT EXISTS `{table}` (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  uscc CHAR(18) NOT NULL,
  name VARCHAR(200) NOT NULL,
  address VARCHAR(300) NOT NULL,
  industry_code CHAR(5) NOT NULL,
  registered_capital DECIMAL(18,2) NOT NULL,
  status VARCHAR(10) NOT NULL,
  legal_person VARCHAR(50) NOT NULL,
  phone VARCHAR(20) NOT NULL,
  established DATE NOT NULL,
  deleted TINYINT NOT NULL DEFAULT 0,
  updated_at DATETIME(6) NOT NULL,
  KEY updated (updated_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""

COLUMNS = ("uscc", "name", "address", "industry_code", "registered_capital", "status",
           "legal_person", "phone", "established", "deleted", "updated_at")


def uscc_check(first17: str) -> str:
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31]


def make_uscc(rng: random.Random, valid: bool = True) -> str:
    body = "91" + "340621" + "".join(rng.choice(USCC_CHARS) for _ in range(9))
    check = uscc_check(body)
    if not valid:
        check = USCC_CHARS[(USCC_CHARS.index(check) + 1) % 31]
    return body + check


def _firm(rng: random.Random, n: int, now: datetime, dirty_share: float) -> tuple:
    dirty = rng.random() < dirty_share
    address = "" if dirty and n % 2 else f"{rng.choice(STREETS)}{rng.randint(1, 999)}号"
    return (make_uscc(rng, valid=not (dirty and n % 2 == 0)), f"濉溪县企业{n}有限公司", address,
            rng.choice(INDUSTRIES), round(rng.uniform(1e4, 5e7), 2), rng.choice(STATUSES),
            f"法人{n % 997}", f"0561-{rng.randint(6000000, 6999999)}",
            (now - timedelta(days=rng.randint(30, 9000))).date(), 0, now)


def seed(conn: pymysql.Connection, rows: int, seed_value: int = 14,
         dirty_share: float = 0.05, batch: int = 5000, table: str = "firms") -> None:
    """Create the table and add `rows` firms; a share of them dirty, and a few duplicates of
    earlier firms (same USCC and name under a new id)."""
    rng = random.Random(seed_value)
    now = datetime.now().replace(microsecond=0)
    with conn.cursor() as cur:
        cur.execute(TABLE.format(table=table))
        cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM `{table}`")
        start = cur.fetchone()[0]
        sql = f"INSERT INTO `{table}` ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * 11)})"
        for offset in range(0, rows, batch):
            chunk = [_firm(rng, start + offset + i + 1, now, dirty_share)
                     for i in range(min(batch, rows - offset))]
            cur.executemany(sql, chunk)
        duplicates = max(1, int(rows * dirty_share / 5)) if rows >= 20 else 0
        cur.execute(f"INSERT INTO `{table}` ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} "
                    f"FROM `{table}` WHERE id > %s ORDER BY id LIMIT %s", (start, duplicates))
    conn.commit()


def mutate(conn: pymysql.Connection, inserts: int = 5, updates: int = 5, deletes: int = 2,
           soft_deletes: int = 1, seed_value: int | None = None,
           table: str = "firms") -> dict[str, list[int]]:
    """One step of the registry's life: new firms, changed ones, firms removed outright and
    firms marked deleted. Returns the ids touched, for tests to check against."""
    rng = random.Random(seed_value)
    now = datetime.now()
    touched: dict[str, list[int]] = {"inserted": [], "updated": [], "deleted": [],
                                     "soft_deleted": []}
    with conn.cursor() as cur:
        cur.execute(f"SELECT id FROM `{table}` WHERE deleted = 0 ORDER BY id")
        live = [r[0] for r in cur.fetchall()]
        picked = rng.sample(live, min(len(live), updates + deletes + soft_deletes))
        for fid in picked[:updates]:
            cur.execute(f"UPDATE `{table}` SET status = %s, registered_capital = "
                        "registered_capital + 1000, updated_at = %s WHERE id = %s",
                        (rng.choice(STATUSES), now, fid))
            touched["updated"].append(fid)
        for fid in picked[updates:updates + deletes]:
            cur.execute(f"DELETE FROM `{table}` WHERE id = %s", (fid,))
            touched["deleted"].append(fid)
        for fid in picked[updates + deletes:]:
            cur.execute(f"UPDATE `{table}` SET deleted = 1, updated_at = %s WHERE id = %s",
                        (now, fid))
            touched["soft_deleted"].append(fid)
        sql = f"INSERT INTO `{table}` ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * 11)})"
        for _ in range(inserts):
            cur.execute(sql, _firm(rng, rng.randint(10**6, 10**7), now, 0.0))
            touched["inserted"].append(cur.lastrowid)
    conn.commit()
    return touched
