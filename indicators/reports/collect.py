"""What a 城市运行分析报告 says, gathered once for every format: the indicator cards of the
period, the hot spots and recurring problems, the forecasts of the busiest categories, the
departments' evaluation (GB/T 30428.4 rates), and the industrial economy of the month."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityevents import queries as event_queries
from cityevents.analysis import forecast, hotspots, recurring
from cityevents.calendar import COUNTY_TZ
from cityops.errors import InvalidInput, NotFound
from datafoundation.economy import analysis as economy
from indicators.model import shift

KINDS = {"monthly": "月度", "weekly": "周"}


@dataclass
class Report:
    kind: str
    start: datetime
    end: datetime
    title: str
    cards: list[dict] = field(default_factory=list)
    classes: list[dict] = field(default_factory=list)
    hotspots: list[dict] = field(default_factory=list)
    recurring: list[dict] = field(default_factory=list)
    forecasts: list[dict] = field(default_factory=list)
    evaluation: list[dict] = field(default_factory=list)
    economy: dict | None = None
    notes: list[str] = field(default_factory=list)


def period(kind: str, start: date) -> tuple[datetime, datetime]:
    if kind not in KINDS:
        raise InvalidInput(f"kind must be monthly or weekly, not {kind!r}")
    begin = datetime(start.year, start.month, 1 if kind == "monthly" else start.day,
                     tzinfo=COUNTY_TZ)
    if kind == "weekly":
        begin -= timedelta(days=begin.weekday())
    return begin, shift(kind, begin, COUNTY_TZ).astimezone(COUNTY_TZ)


_CARDS = """
SELECT i.code, i.name, i.class_code, c.name AS class_name, i.unit, i.direction, i.warning,
       i.alarm, i.excellence, v.value, v.light, v.period_start
FROM indicators i JOIN indicator_classes c ON c.code = i.class_code
LEFT JOIN LATERAL (SELECT value, light, period_start FROM indicator_values
    WHERE indicator_code = i.code AND dimension = '' AND period_start >= %(start)s
      AND period_start < %(end)s ORDER BY period_start DESC LIMIT 1) v ON true
WHERE i.enabled ORDER BY i.code
"""


async def _cards(conn: AsyncConnection, report: Report) -> None:
    cur = await conn.cursor(row_factory=dict_row).execute(
        _CARDS, {"start": report.start, "end": report.end})
    report.cards = await cur.fetchall()
    by_class: dict[str, dict] = {}
    for card in report.cards:
        top = by_class.setdefault(card["class_name"], {"name": card["class_name"], "red": 0,
                                                       "yellow": 0, "green": 0, "none": 0})
        colour = {"excellent": "green"}.get(card["light"], card["light"] or "none")
        top[colour] += 1
    report.classes = list(by_class.values())


async def _events(conn: AsyncConnection, report: Report) -> None:
    days = (report.end - report.start).days
    report.hotspots = (await hotspots.find(conn, until=report.end, period_days=days))[:10]
    report.recurring = (await recurring.find(conn, until=report.end, days=days))[:10]
    report.evaluation = await event_queries.evaluation(conn, report.start, report.end)
    cur = await conn.execute(
        "SELECT category_code FROM events WHERE reported_at >= %s AND reported_at < %s"
        " AND merged_into IS NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 3",
        (report.start, report.end))
    for (category,) in await cur.fetchall():
        try:
            report.forecasts.append(await forecast.forecast(conn, category, report.end))
        except InvalidInput as err:  # too short: the report says so instead of a line
            report.notes.append(f"{category}：{err}")


async def collect(conn: AsyncConnection, kind: str, start: date) -> Report:
    begin, end = period(kind, start)
    label = (f"{begin:%Y年%m月}" if kind == "monthly"
             else f"{begin:%Y年%m月%d日}至{end - timedelta(days=1):%m月%d日}")
    report = Report(kind, begin, end, f"濉溪县城市运行{KINDS[kind]}分析报告（{label}）")
    await _cards(conn, report)
    await _events(conn, report)
    if kind == "monthly":
        try:
            report.economy = await economy.overview(conn, begin.date(), top=5)
        except NotFound:
            report.notes.append("工业经济：尚未导入企业月度数据")
    return report
