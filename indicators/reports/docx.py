"""The report as an editable Word document (python-docx: the only module that imports it).
Charts are given as their figures in a table, which staff can chart again in Word."""

from __future__ import annotations

import io

from docx import Document
from docx.oxml.ns import qn
from docx.shared import Pt

from indicators.reports import text
from indicators.reports.collect import Report

FONT = "宋体"


def _chinese(document: Document) -> None:
    style = document.styles["Normal"]
    style.font.name, style.font.size = FONT, Pt(10.5)
    style.element.rPr.rFonts.set(qn("w:eastAsia"), FONT)  # East Asian text in 宋体


def _table(document: Document, rows: list[list[str]]) -> None:
    table = document.add_table(rows=len(rows), cols=len(rows[0]))
    table.style = "Table Grid"
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = str(value)


def _chart_figures(document: Document, forecast: dict) -> None:
    rows = [["周", "件数", "类型"]]
    rows += [[f"{h['week']:%Y-%m-%d}", f"{h['count']:.0f}", "实际"]
             for h in forecast["history"][-8:]]
    rows += [[f"{f['week']:%Y-%m-%d}", f"{f['mean']:.1f}", "预测"] for f in forecast["forecast"]]
    _table(document, rows)


def render(report: Report) -> bytes:
    document = Document()
    _chinese(document)
    document.add_heading(report.title, level=0)
    document.add_paragraph(text.subtitle(report))
    for heading, block in text.sections(report):
        document.add_heading(heading, level=1)
        for kind, item in block:
            if kind == "p":
                document.add_paragraph(item)
            elif kind == "table":
                _table(document, item["rows"])
            elif kind == "chart":
                _chart_figures(document, item)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
