"""The report's tables as a workbook (openpyxl: the only module of the reports that imports
it): one sheet per section, every table of the section below its text."""

from __future__ import annotations

import io

from openpyxl import Workbook
from openpyxl.styles import Font

from indicators.reports import text
from indicators.reports.collect import Report


def render(report: Report) -> bytes:
    book = Workbook()
    book.remove(book.active)
    for heading, block in text.sections(report):
        sheet = book.create_sheet(heading.split("、", 1)[-1][:31])
        sheet.append([report.title])
        sheet["A1"].font = Font(bold=True, size=13)
        for kind, item in block:
            if kind == "p":
                sheet.append([item])
            elif kind == "table":
                for i, row in enumerate(item["rows"]):
                    sheet.append(row)
                    if i == 0:
                        for cell in sheet[sheet.max_row]:
                            cell.font = Font(bold=True)
            elif kind == "chart":
                sheet.append(["周", "实际", "预测", "下限", "上限"])
                for h in item["history"]:
                    sheet.append([h["week"], h["count"]])
                for f in item["forecast"]:
                    sheet.append([f["week"], None, f["mean"], f["lower"], f["upper"]])
            sheet.append([])
        sheet.column_dimensions["A"].width = 40
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
