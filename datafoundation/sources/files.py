"""File drops: XLSX or CSV files in a folder (file_drop) or fetched over SFTP (sftp), e.g. the
统计局's monthly reports. Files are taken in name order; each file is one batch, committed
with its name as the cursor (the `_file` column), so a run resumes at the next file.
Columns are named by the header row (matched by name, so a file may order them differently);
the newest file's header is the schema (drift is judged on it)."""

from __future__ import annotations

import csv
import fnmatch
import io
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

from cityops.errors import SourceError, SyncRejected
from datafoundation.sources import Column, Page

FILE_COLUMN = "_file"
# numbers as numeric: a month's figure may be whole in one file and decimal in the next
_TYPES = {bool: "boolean", int: "numeric", float: "numeric", datetime: "timestamp",
          date: "date", str: "text"}


def _text(value: object) -> object:
    if value is None or isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


class FileDropSource:
    def __init__(self, name: str, settings: dict, credentials: dict[str, str]) -> None:
        self.name = name
        self.settings = settings
        self.folder = Path(str(settings.get("path", "")))

    def connect(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"source {self.name}: folder {self.folder} does not exist")

    def close(self) -> None:
        return

    def _files(self, pattern: str) -> list[Path]:
        return sorted(p for p in self.folder.iterdir()
                      if p.is_file() and fnmatch.fnmatch(p.name, pattern))

    def _rows(self, path: Path) -> tuple[list[str], list[tuple]]:
        """(header, data rows) of a file's first sheet, or of a CSV (UTF-8, BOM or not)."""
        where = f"source {self.name}, file {path.name}"
        if path.suffix.lower() == ".csv":
            try:
                lines = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
            except UnicodeDecodeError as err:
                raise SourceError(f"{where}: not UTF-8 text ({err.reason})") from err
        else:
            # openpyxl (~1 s to import) only when a workbook is read
            from openpyxl import load_workbook
            from openpyxl.utils.exceptions import InvalidFileException

            try:
                book = load_workbook(path, read_only=True, data_only=True)
            except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as err:
                raise SourceError(f"{where}: not a readable XLSX file ({err})") from err
            lines = [tuple(row) for row in book.worksheets[0].iter_rows(values_only=True)]
            book.close()
        if not lines:
            raise SourceError(f"{where}: empty, no header row")
        header = [str(h).strip() for h in lines[0]]
        return header, [tuple(r) for r in lines[1:] if any(v not in (None, "") for v in r)]

    def columns(self, table: str) -> list[Column]:
        files = self._files(table)
        if not files:
            raise SourceError(f"source {self.name}: no file matches {table} in {self.folder}")
        # the newest readable file's header; an unreadable one fails the run when its turn
        # comes, after the files before it are committed
        for path in reversed(files):
            try:
                header, rows = self._rows(path)
                break
            except SourceError:
                continue
        else:
            header, rows = self._rows(files[-1])  # none readable: the newest one's error
        first = rows[0] if rows else (None,) * len(header)
        return [*(Column(h, _TYPES.get(type(v), "text")) for h, v in zip(header, first,
                                                                          strict=False)),
                Column(FILE_COLUMN, "text")]

    def null_rows(self, table: str, columns: list[Column], column: str, keys: list[str],
                  limit: int = 10000) -> list[tuple]:
        return []  # the cursor is the file's name: never NULL

    def keys(self, table: str, keys: list[str]) -> list[tuple]:
        raise SyncRejected(f"source {self.name}: deletes by key comparison need a table "
                           "source; files are only added")

    def read(self, table: str, columns: list[Column], keys: list[str], cursor: str | None,
             after: Page, batch_rows: int) -> Iterator[list[tuple]]:
        names = [c.name for c in columns]
        for path in self._files(table):
            if after.cursor is not None and path.name <= after.cursor:
                continue
            header, rows = self._rows(path)
            unknown = sorted(set(header) - set(names))
            if unknown:
                raise SyncRejected(f"source {self.name}, file {path.name}: columns {unknown} "
                                   "are not in the sync's schema (the newest file's header)")
            where = {h: i for i, h in enumerate(header)}
            out = []
            for number, row in enumerate(rows, start=2):
                if len(row) > len(header):
                    raise SyncRejected(f"source {self.name}, file {path.name}, row {number}: "
                                       f"{len(row)} values under {len(header)} headers")
                values = {h: _text(row[i]) if i < len(row) else None for h, i in where.items()}
                out.append(tuple(path.name if n == FILE_COLUMN else values.get(n)
                                 for n in names))
            if out:
                yield out
