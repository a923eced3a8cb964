"""A realistic demo dataset of 规上工业 enterprises for a county the size of Suixi: about 320
firms over two years of months, so that year-on-year figures on the same set of firms work.

Made up, deterministic for a seed, shaped like a coal-and-aluminium county with a liquor
industry: industries and their electricity intensity, towns and parks, mostly small private
firms, a Spring Festival dip in February, some loss-making firms, a few firms entering the
规上 list this year (so 同口径 growth differs from the raw totals).
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from datetime import date

from datafoundation.economy.parse import CHINESE_HEADERS, USCC_CHARS, uscc_check_char

# (大类 code and name, weight, value-added share of revenue, kWh per 10,000 CNY of revenue)
INDUSTRIES = [
    ("06 煤炭开采和洗选业", 4, 0.45, 260), ("13 农副食品加工业", 16, 0.22, 70),
    ("15 酒、饮料和精制茶制造业", 6, 0.40, 55), ("17 纺织业", 6, 0.24, 160),
    ("18 纺织服装、服饰业", 8, 0.26, 60), ("26 化学原料和化学制品制造业", 7, 0.27, 420),
    ("29 橡胶和塑料制品业", 9, 0.25, 180), ("30 非金属矿物制品业", 14, 0.28, 520),
    ("32 有色金属冶炼和压延加工业", 10, 0.18, 900), ("33 金属制品业", 12, 0.24, 150),
    ("34 通用设备制造业", 10, 0.27, 90), ("35 专用设备制造业", 7, 0.28, 85),
    ("38 电气机械和器材制造业", 8, 0.25, 80), ("44 电力、热力生产和供应业", 3, 0.35, 120),
]
TOWNS = [("濉溪经济开发区", 30), ("濉溪芜湖现代产业园区", 16), ("濉溪镇", 10), ("韩村镇", 6),
         ("刘桥镇", 6), ("五沟镇", 5), ("临涣镇", 7), ("双堆集镇", 4), ("铁佛镇", 4),
         ("南坪镇", 4), ("百善镇", 4), ("孙疃镇", 4), ("四铺镇", 3)]
SIZES = [("大型", 3, 150_000), ("中型", 12, 40_000), ("小型", 70, 9_000), ("微型", 15, 3_000)]
OWNERSHIP = [("私营", 58), ("有限责任公司", 18), ("股份有限公司", 8), ("国有控股", 7),
             ("外商及港澳台投资", 4), ("集体", 2), ("其他", 3)]
SEASON = [0.92, 0.70, 1.02, 1.00, 1.01, 1.05, 0.98, 0.97, 1.03, 1.02, 1.05, 1.25]
FIRM_WORDS = ["恒", "兴", "华", "鑫", "濉", "瑞", "泰", "宏", "隆", "源", "丰", "盛", "远",
              "达", "嘉", "金", "安", "通", "润", "宇"]
FIRM_KINDS = {"06": "煤业", "13": "食品", "15": "酒业", "17": "纺织", "18": "服饰", "26": "化工",
              "29": "塑业", "30": "建材", "32": "铝业", "33": "金属制品", "34": "机械",
              "35": "装备", "38": "电气", "44": "能源"}


@dataclass
class Firm:
    code: str
    name: str
    industry: str
    town: str
    size: str
    ownership: str
    annual_revenue: float  # 万元 in the first year
    growth: float
    margin: float
    va_share: float
    intensity: float
    first_month: date


def _pick(rng: random.Random, options: list[tuple]) -> tuple:
    return rng.choices(options, weights=[o[1] for o in options])[0]


def _uscc(rng: random.Random, serial: int) -> str:
    # 登记管理部门 9 (工商) + 类别 1 (企业) + 340621 (濉溪县) + a 9-character organisation code
    body = "91340621" + "".join(rng.choice(USCC_CHARS[:10]) for _ in range(5)) + f"{serial:04d}"
    return body + uscc_check_char(body)


def _firm(rng: random.Random, serial: int, start: date, until: date) -> Firm:
    industry, _w, va_share, intensity = _pick(rng, INDUSTRIES)
    size, _w, median = _pick(rng, SIZES)
    name = ("濉溪县" + "".join(rng.sample(FIRM_WORDS, 2)) + FIRM_KINDS[industry[:2]]
            + rng.choice(["有限公司", "有限责任公司", "股份有限公司"]))
    newcomer = rng.random() < 0.06  # entered the 规上 list this year
    first = date(until.year, rng.randint(1, max(1, until.month)), 1) if newcomer else start
    return Firm(
        code=_uscc(rng, serial), name=name, industry=industry, town=_pick(rng, TOWNS)[0],
        size=size, ownership=_pick(rng, OWNERSHIP)[0],
        annual_revenue=max(2_000.0, median * rng.lognormvariate(0, 0.45)),
        growth=rng.gauss(0.06, 0.12), margin=rng.gauss(0.05, 0.06), va_share=va_share,
        intensity=intensity * rng.uniform(0.7, 1.3), first_month=first,
    )


def _months(start: date, until: date) -> list[date]:
    months, current = [], start
    while current <= until:
        months.append(current)
        current = date(current.year + current.month // 12, current.month % 12 + 1, 1)
    return months


def _row(rng: random.Random, firm: Firm, month: date, start_year: int) -> list[object]:
    years = month.year - start_year
    revenue = (firm.annual_revenue / 12 * (1 + firm.growth) ** years * SEASON[month.month - 1]
               * rng.uniform(0.9, 1.1))
    profit = revenue * (firm.margin + rng.gauss(0, 0.02))
    return [firm.code, firm.name, firm.industry, firm.town, firm.size, firm.ownership,
            f"{month:%Y-%m}", f"{revenue:.2f}", f"{revenue * firm.va_share:.2f}",
            f"{profit:.2f}", f"{revenue * rng.uniform(0.025, 0.06):.2f}",
            f"{revenue * firm.intensity:.1f}"]


def generate(firms: int = 320, seed: int = 20261123, until: date = date(2026, 10, 1)) -> str:
    """The dataset as CSV text with the statistics bureau's Chinese headers: every month from
    January of the year before `until` to `until`."""
    rng = random.Random(seed)  # noqa: S311 - demo data, reproducible by seed
    start = date(until.year - 1, 1, 1)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CHINESE_HEADERS)
    for serial in range(1, firms + 1):
        firm = _firm(rng, serial, start, until)
        for month in _months(firm.first_month, until):
            writer.writerow(_row(rng, firm, month, start.year))
    return out.getvalue()
