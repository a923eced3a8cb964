"""The report's words and tables, independent of the format: every renderer (PDF, DOCX, XLSX)
walks the same sections, so the figures in each file are the same figures."""

from __future__ import annotations

from datetime import datetime

from indicators.reports.collect import Report

LIGHT_WORD = {"red": "红", "yellow": "黄", "green": "绿", "excellent": "优", "none": "—",
              None: "—"}
Block = list[tuple[str, object]]


def _num(v: float | None, digits: int = 2) -> str:
    if v is None:
        return "—"
    return f"{v:,.{digits}f}".rstrip("0").rstrip(".") if digits else f"{v:,.0f}"


def _rate(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "—"


def subtitle(report: Report) -> str:
    return (f"统计期：{report.start:%Y-%m-%d} 至 {report.end:%Y-%m-%d}（不含）　"
            f"生成时间：{datetime.now(report.start.tzinfo):%Y-%m-%d %H:%M}")


def _indicators(report: Report) -> Block:
    red = [c for c in report.cards if c["light"] == "red"]
    summary = "；".join(f"{c['name']}红{c['red']}项、黄{c['yellow']}项、绿{c['green']}项"
                       for c in report.classes)
    rows = [["状态", "指标", "本期值", "预警/告警值", "类别"]]
    rows += [[LIGHT_WORD[c["light"]], f"{c['code']} {c['name']}",
              f"{_num(c['value'])}{c['unit']}" if c["value"] is not None else "未计算",
              f"{_num(c['warning'])}/{_num(c['alarm'])}", c["class_name"]]
             for c in report.cards]
    lead = (f"本期共 {len(report.cards)} 项指标，其中红灯 {len(red)} 项"
            + (f"（{'、'.join(c['name'] for c in red)}）" if red else "") + f"。{summary}。")
    return [("p", lead), ("table", {"rows": rows, "lights": [c["light"] for c in report.cards]})]


def _analysis(report: Report) -> Block:
    block: Block = []
    if report.hotspots:
        rows = [["区域", "类别", "本期件数", "历史期望"]]
        rows += [[h["area_name"] or h["area"], h["category"], str(h["current"]),
                  _num(h["expected"], 1)] for h in report.hotspots]
        block += [("p", f"与本区域历史相比显著偏高的热点 {len(report.hotspots)} 处："),
                  ("table", {"rows": rows})]
    else:
        block.append(("p", "本期未发现与历史相比显著偏高的热点区域。"))
    if report.recurring:
        rows = [["问题类别", "上报次数", "趋势", "网格"]]
        trend = {"rising": "上升", "steady": "平稳", "falling": "下降"}
        rows += [[r["category_name"], str(r["events"]), trend[r["trend"]], "、".join(r["grids"])]
                 for r in report.recurring]
        block += [("p", f"同一地点反复出现的高发问题 {len(report.recurring)} 处："),
                  ("table", {"rows": rows})]
    return block


def _forecasts(report: Report) -> Block:
    block: Block = []
    for f in report.forecasts:
        nxt = "；".join(f"{x['week']:%m月%d日}当周 {x['mean']:.0f} 件（{x['lower']:.0f}–"
                       f"{x['upper']:.0f}）" for x in f["forecast"])
        head = f"{f['category']} 未来四周预测（{f['model']}，{f['level']:.0%} 区间）"
        block += [("p", f"{head}：{nxt}。"), ("chart", f)]
    block += [("p", note) for note in report.notes if not note.startswith("工业经济")]
    return block or [("p", "本期无足够数据进行预测。")]


def _evaluation(report: Report) -> Block:
    if not report.evaluation:
        return [("p", "本期无派遣到部门的案件。")]
    rows = [["部门", "应结案数", "结案率", "按期结案率", "按期处置率", "返工率"]]
    rows += [[r["department_id"] or "—", str(r["due"]), _rate(r["closed"], r["due"]),
              _rate(r["closed_on_time"], r["due"]), _rate(r["disposed_on_time"], r["due"]),
              _rate(r["reworked"], r["due"])] for r in report.evaluation]
    return [("p", "按 GB/T 30428.4 计算的各部门处置评价（重在纵向对比，不作横向排名）："),
            ("table", {"rows": rows})]


def _economy(report: Report) -> Block:
    e = report.economy
    if e is None or not e["firms"]:
        return [("p", "工业经济：本月尚无企业月度数据。")]
    t, yoy = e["totals"], e["yoy"]
    growth = yoy.get("value_added")
    lead = (f"1–{e['period']['end'].month}月规上工业企业 {e['firms']} 家，营业收入"
            f" {_num(t['revenue'] / 10000)} 亿元，工业增加值 {_num(t['value_added'] / 10000)} 亿元"
            + (f"，同口径增长 {100 * growth:.1f}%" if growth is not None else "")
            + f"；亏损企业 {e['loss_making']['firms']} 家。")
    rows = [["乡镇/园区", "企业数", "营业收入（万元）", "占比"]]
    rows += [[g["town"], str(g["firms"]), _num(g["revenue"]),
              f"{g['revenue_share']:.1%}" if g["revenue_share"] is not None else "—"]
             for g in e["by_town"]]
    return [("p", lead), ("table", {"rows": rows})]


def sections(report: Report) -> list[tuple[str, Block]]:
    out = [("一、城市运行指标概况", _indicators(report)),
           ("二、事件分析：热点与高发问题", _analysis(report)),
           ("三、趋势预测", _forecasts(report)),
           ("四、处置考核评价", _evaluation(report))]
    if report.kind == "monthly":
        out.append(("五、工业经济运行", _economy(report)))
    return out
