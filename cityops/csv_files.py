"""Reading the CSV files people make (issue #13, item 17): one decoder for every CSV import.

Excel and WPS save "CSV UTF-8" with a byte-order mark, and plain "CSV" in the Windows code page,
which on Chinese Windows is GBK (read here as GB18030, its superset); Excel's "Unicode text"
is UTF-16 with a mark. Each is accepted and the answer says which one was read. Rows are
numbered as a spreadsheet shows them: the header is row 1, and an empty line is a row too.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass

from cityops.errors import InvalidInput

# cells of up to 1 MiB (a long address or note); csv's default of 128 KiB raised csv.Error
FIELD_MAX_CHARS = 1024 * 1024
_MARKS = ((codecs.BOM_UTF8, "utf-8", "UTF-8 (with BOM)"),
          (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"), (codecs.BOM_UTF16_BE, "utf-16-be",
                                                         "UTF-16"))


@dataclass(frozen=True)
class CsvTable:
    encoding: str  # as a person names it: "UTF-8", "UTF-8 (with BOM)", "GBK", "UTF-16"
    rows: list[tuple[int, list[str]]]  # (row number as a spreadsheet shows it, cells)


def decode(data: bytes, source: str) -> tuple[str, str]:
    """(the text, the encoding read); InvalidInput when it is none of those people save."""
    for mark, codec, name in _MARKS:
        if data.startswith(mark):
            try:
                return data[len(mark):].decode(codec), name
            except UnicodeDecodeError as err:
                raise InvalidInput(f"{source}: starts as {name} but byte {err.start} is not "
                                   f"{name}; save the file again as CSV UTF-8") from err
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError as utf8_err:
        try:
            return data.decode("gb18030"), "GBK"
        except UnicodeDecodeError:
            raise InvalidInput(
                f"{source}: neither UTF-8 nor GBK (byte {utf8_err.start} is not UTF-8); "
                "save the file as CSV UTF-8") from utf8_err


def read_csv(data: bytes, source: str) -> CsvTable:
    """Every row with its spreadsheet row number; a broken quote names its row."""
    text, encoding = decode(data, source)
    csv.field_size_limit(max(csv.field_size_limit(), FIELD_MAX_CHARS))
    if "\x00" in text:
        raise InvalidInput(f"{source}: holds NUL bytes: not a CSV text file ({encoding} read)")
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            rows.append((len(rows) + 1, cells))
    except csv.Error as err:
        raise InvalidInput(f"{source}: row {len(rows) + 1}: {err} ({encoding} read)") from err
    return CsvTable(encoding, rows)
