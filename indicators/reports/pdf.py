"""The report as a typeset zh-CN PDF (reportlab: the only module that imports it).

Chinese text is set in Adobe's STSong-Light CID font, which reportlab names without embedding
(readers substitute their Song typeface; the text stays extractable), or in a TrueType font
given by `CITYOPS_REPORT_FONT_FILE`, embedded."""

from __future__ import annotations

import io
from pathlib import Path

from reportlab.graphics.charts.linecharts import HorizontalLineChart
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from indicators.reports import text
from indicators.reports.collect import Report

LIGHT = {"red": colors.HexColor("#d9363e"), "yellow": colors.HexColor("#e0a800"),
         "green": colors.HexColor("#2e9d5b"), "excellent": colors.HexColor("#2e9d5b")}


def _font(font_file: str | None) -> str:
    if font_file:
        name = "CityopsReport"
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(name, str(Path(font_file))))
        return name
    if "STSong-Light" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    return "STSong-Light"


def _styles(font: str) -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=font, fontSize=10, leading=15, wordWrap="CJK")
    return {"body": base,
            "title": ParagraphStyle("title", parent=base, fontSize=18, leading=26, alignment=1),
            "h": ParagraphStyle("h", parent=base, fontSize=13, leading=20, spaceBefore=8),
            "cell": ParagraphStyle("cell", parent=base, fontSize=8.5, leading=11)}


def _table(rows: list[list[str]], st: dict, widths: list[float] | None = None,
           lights: list[str | None] | None = None) -> Table:
    cells = [[Paragraph(str(c), st["cell"]) for c in row] for row in rows]
    table = Table(cells, colWidths=widths, repeatRows=1)
    style = [("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
             ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef7")),
             ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]
    for i, light in enumerate(lights or [], start=1):
        if light in LIGHT:
            style.append(("BACKGROUND", (0, i), (0, i), LIGHT[light]))
    table.setStyle(TableStyle(style))
    return table


def _chart(forecast: dict) -> Drawing:
    history = [h["count"] for h in forecast["history"][-16:]]
    ahead = [f["mean"] for f in forecast["forecast"]]
    drawing = Drawing(170 * mm, 55 * mm)
    chart = HorizontalLineChart()
    chart.x, chart.y, chart.width, chart.height = 12 * mm, 8 * mm, 150 * mm, 42 * mm
    gap = [None] * len(history)
    chart.data = [history + [None] * len(ahead), [*gap[:-1], history[-1], *ahead]]
    chart.lines[0].strokeColor = colors.HexColor("#3d7bff")
    chart.lines[1].strokeColor = colors.HexColor("#e0a800")
    chart.lines[1].strokeDashArray = [3, 2]
    chart.categoryAxis.categoryNames = [""] * (len(history) + len(ahead))
    chart.valueAxis.valueMin = 0
    drawing.add(chart)
    return drawing


def render(report: Report, font_file: str | None = None) -> bytes:
    st = _styles(_font(font_file))
    story: list = [Paragraph(report.title, st["title"]), Spacer(1, 4 * mm),
                   Paragraph(text.subtitle(report), st["body"])]
    for heading, block in text.sections(report):
        story.append(Paragraph(heading, st["h"]))
        for kind, item in block:
            if kind == "p":
                story.append(Paragraph(item, st["body"]))
            elif kind == "table":
                story.append(_table(item["rows"], st, lights=item.get("lights")))
            elif kind == "chart":
                story.append(_chart(item))
            story.append(Spacer(1, 2 * mm))
    out = io.BytesIO()
    SimpleDocTemplate(out, pagesize=A4, title=report.title, author="CityOps",
                      leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                      bottomMargin=16 * mm).build(story)
    return out.getvalue()
