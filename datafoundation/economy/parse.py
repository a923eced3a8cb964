"""Reading enterprise indicator files (CSV or Excel) into checked rows, with a report of every
row that is wrong and why. Headers may be the statistics bureau's Chinese ones or English."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from cityops.csv_files import read_csv
from cityops.errors import InvalidInput

HEADERS: dict[str, tuple[str, ...]] = {
    "code": ("code", "统一社会信用代码"), "name": ("name", "企业名称"),
    "industry": ("industry", "行业"), "town": ("town", "乡镇园区"), "size": ("size", "企业规模"),
    "ownership": ("ownership", "经济类型"), "month": ("month", "月份"),
    "revenue": ("revenue", "营业收入(万元)"), "value_added": ("value_added", "工业增加值(万元)"),
    "profit": ("profit", "利润总额(万元)"), "tax": ("tax", "税金总额(万元)"),
    "electricity_kwh": ("electricity_kwh", "用电量(千瓦时)"),
}
CHINESE_HEADERS = [names[1] for names in HEADERS.values()]
SIZES = {"大型": "large", "中型": "medium", "小型": "small", "微型": "micro",
         "large": "large", "medium": "medium", "small": "small", "micro": "micro"}
NON_NEGATIVE = ("revenue", "value_added", "tax", "electricity_kwh")
MAX_ROWS = 200_000
# 统一社会信用代码 (GB 32100-2015): 18 characters, the last a check character
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_MONTH = re.compile(r"^(\d{4})[-/.年](\d{1,2})月?$")


def uscc_check_char(first17: str) -> str:
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31]


def valid_uscc(code: str) -> bool:
    return (len(code) == 18 and all(c in USCC_CHARS for c in code)
            and uscc_check_char(code[:17]) == code[17])


@dataclass
class Parsed:
    encoding: str = ""  # what was read: "UTF-8", "GBK", "Excel", ...
    rows: list[dict] = field(default_factory=list)
    report: list[dict] = field(default_factory=list)  # {"row": n, "errors": [...]}


def read_table(filename: str, data: bytes) -> tuple[list[tuple[int, list[object]]], str]:
    """(each row's number as a spreadsheet shows it and its cells, header first; what was
    read): .xlsx through openpyxl, anything else as CSV (UTF-8, GBK, ...: csv_files)."""
    if filename.lower().endswith(".xlsx"):
        import openpyxl

        try:
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as err:  # openpyxl raises many kinds for a broken file
            raise InvalidInput(f"{filename}: not a readable Excel workbook ({err})") from err
        rows = book.worksheets[0].iter_rows(values_only=True)
        return [(n, list(r)) for n, r in enumerate(rows, start=1)], "Excel"
    table = read_csv(data, filename)
    return [(n, list(cells)) for n, cells in table.rows], table.encoding


def _columns(header: list[object], encoding: str) -> dict[str, int]:
    names = [str(h or "").strip() for h in header]
    found, missing = {}, []
    for key, aliases in HEADERS.items():
        index = next((names.index(a) for a in aliases if a in names), None)
        if index is None:
            missing.append(aliases[1])
        else:
            found[key] = index
    if missing:
        raise InvalidInput(f"missing columns: {', '.join(missing)} (row 1 read as {encoding})")
    return found


def _month(value: object) -> date:
    if isinstance(value, datetime | date):
        return date(value.year, value.month, 1)
    match = _MONTH.match(str(value).strip())
    if not match or not 1 <= int(match[2]) <= 12:
        raise ValueError(f"month {value!r}: use YYYY-MM")
    return date(int(match[1]), int(match[2]), 1)


def _number(key: str, value: object) -> Decimal:
    try:
        number = Decimal(str(value).replace(",", "").strip())
    except InvalidOperation as err:
        raise ValueError(f"{key} {value!r} is not a number") from err
    if not number.is_finite() or (key in NON_NEGATIVE and number < 0):
        raise ValueError(f"{key} {value!r} must be a number >= 0" if key in NON_NEGATIVE
                         else f"{key} {value!r} is not a number")
    return number


def _row(cells: list[object], cols: dict[str, int]) -> tuple[dict, list[str]]:
    raw = {k: (cells[i] if i < len(cells) else None) for k, i in cols.items()}
    row, errors = {}, []
    for key in ("code", "name", "industry", "town", "ownership"):
        row[key] = str(raw[key] or "").strip()
        if not row[key]:
            errors.append(f"{key} is empty")
    if row["code"] and not valid_uscc(row["code"]):
        errors.append(f"code {row['code']!r} is not a valid 统一社会信用代码")
    row["size"] = SIZES.get(str(raw["size"] or "").strip())
    if row["size"] is None:
        errors.append(f"size {raw['size']!r}: use 大型, 中型, 小型 or 微型")
    for key, convert in (("month", _month), *((k, None) for k in (
            "revenue", "value_added", "profit", "tax", "electricity_kwh"))):
        try:
            row[key] = convert(raw[key]) if convert else _number(key, raw[key])
        except ValueError as err:
            errors.append(str(err))
    return row, errors


def parse(filename: str, data: bytes) -> Parsed:
    read, encoding = read_table(filename, data)
    table = [(n, r) for n, r in read if any(c not in (None, "") for c in r)]
    if not table:
        raise InvalidInput(f"{filename}: the file is empty ({encoding} read)")
    if len(table) > MAX_ROWS + 1:
        raise InvalidInput(f"{filename}: more than {MAX_ROWS} rows; split the file")
    cols, result = _columns(table[0][1], encoding), Parsed(encoding)
    seen: dict[tuple[str, date], int] = {}
    firms: dict[str, tuple] = {}
    for number, cells in table[1:]:  # numbered as the spreadsheet shows them
        row, errors = _row(cells, cols)
        if not errors:
            key = (row["code"], row["month"])
            if key in seen:
                errors.append(f"{row['code']} {row['month']:%Y-%m} repeats row {seen[key]}")
            attrs = (row["name"], row["industry"], row["town"], row["size"], row["ownership"])
            if firms.setdefault(row["code"], attrs) != attrs:
                errors.append(f"{row['code']}: name, industry, town, size or ownership differ"
                              " from an earlier row")
            seen.setdefault(key, number)
        if errors:
            result.report.append({"row": number, "errors": errors})
        else:
            result.rows.append(row)
    return result
