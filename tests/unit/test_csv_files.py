"""The one CSV decoder every import uses: the encodings Excel and WPS write, rows numbered as
a spreadsheet shows them, and a clear refusal naming what is wrong."""

from __future__ import annotations

import codecs

import pytest

from cityops.csv_files import decode, read_csv
from cityops.errors import InvalidInput

TEXT = "名称,乡镇\n濉溪县测试厂,韩村镇\n"


@pytest.mark.parametrize(("data", "encoding"), [
    (TEXT.encode("utf-8"), "UTF-8"),
    (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "UTF-8 (with BOM)"),
    (TEXT.encode("gbk"), "GBK"),
    (TEXT.encode("gb18030"), "GBK"),
    (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "UTF-16"),
])
def test_each_encoding_people_save_is_read_and_named(data: bytes, encoding: str) -> None:
    text, read = decode(data, "f.csv")
    assert (text, read) == (TEXT, encoding)  # no BOM left in front of the first column


def test_bytes_of_no_known_encoding_are_refused_by_name() -> None:
    with pytest.raises(InvalidInput, match=r"f\.csv: neither UTF-8 nor GBK \(byte 2"):
        decode(b"ab\xff\xfe\xff", "f.csv")
    with pytest.raises(InvalidInput, match="NUL"):
        read_csv(b"a,b\n\x00,1\n", "f.csv")


def test_rows_are_numbered_as_a_spreadsheet_shows_them() -> None:
    data = 'id,note\na,"two\nlines"\n\nb,x\n'.encode("gbk")
    table = read_csv(data, "f.csv")
    assert table.encoding == "UTF-8"  # pure ASCII is read as UTF-8
    assert [(n, cells) for n, cells in table.rows] == [
        (1, ["id", "note"]), (2, ["a", "two\nlines"]), (3, []), (4, ["b", "x"])]


def test_a_long_cell_is_read_and_a_broken_quote_names_its_row() -> None:
    long = "x" * 300_000  # over csv's default field limit of 128 KiB
    assert read_csv(f"id,note\na,{long}\n".encode(), "f.csv").rows[1][1][1] == long
    with pytest.raises(InvalidInput, match=r"f\.csv: row 3: .*limit.*\(UTF-8 read\)"):
        read_csv(f"id,note\na,b\nc,{'x' * (1024 * 1024 + 1)}\n".encode(), "f.csv")


def test_the_map_point_import_reads_gbk_and_keeps_spreadsheet_rows(tmp_path) -> None:
    from spatial.importer import read_point_rows

    path = tmp_path / "站点.csv"
    path.write_bytes("id,lon,lat,名称\ns-1,116.77,33.92,指挥中心\n\ns-2,116.7,33.9,泵站\n"
                     .encode("gbk"))
    rows = read_point_rows(path)
    assert [(r["_row"], r["id"], r["名称"]) for r in rows] == [
        (2, "s-1", "指挥中心"), (4, "s-2", "泵站")]
