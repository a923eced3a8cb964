"""Standards as data: the shipped data elements, code tables and value maps load; a bad file
changes nothing and names what is wrong; a field mapped to an element takes its masking."""

from __future__ import annotations

import shutil

import psycopg
import pytest
import yaml

from cityops.errors import InvalidInput, NotFound
from datafoundation.governance import Field, register_dataset, standards


def test_shipped_standards_load(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        counts = standards.load(conn)
        assert counts["elements"] >= 20 and counts["code_tables"] == 6
        by_level = dict(conn.execute("SELECT level, count(*) FROM code_values WHERE "
                                     "table_id = 'hy' GROUP BY level").fetchall())
        assert by_level == {1: 20, 2: 97}  # GB/T 4754-2017: 20 门类, 97 大类
        assert conn.execute("SELECT parent FROM code_values WHERE table_id = 'hy' AND code = "
                            "'33'").fetchone() == ("C",)
        towns = conn.execute("SELECT count(*) FROM code_values WHERE table_id = 'xzqh' AND "
                             "parent = '340621'").fetchone()[0]
        assert towns == 11
        assert conn.execute("SELECT code FROM value_maps WHERE source = 'scjg_qydj' AND "
                            "table_id = 'qydjzt' AND source_value = '吊销'").fetchone() == ("2",)
        assert conn.execute("SELECT name_en, sensitivity, mask_kind FROM data_elements WHERE "
                            "id = 'DE00011'").fetchone() == (
            "citizen identity number", 3, "id_card")


def _copy(tmp_path):
    folder = tmp_path / "governance"
    shutil.copytree(standards.DEFAULT_DIR / "standards", folder / "standards")
    return folder


def test_bad_files_name_the_entry_and_change_nothing(database_url, tmp_path):
    folder = _copy(tmp_path)
    maps = folder / "standards" / "value_maps.yaml"
    data = yaml.safe_load(maps.read_text(encoding="utf-8"))
    data["scjg_qydj"]["qydjzt"]["歇业"] = "7"
    maps.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with psycopg.connect(database_url, autocommit=True) as conn:
        standards.load(conn)
        with pytest.raises(InvalidInput, match="scjg_qydj: qydjzt: '歇业' maps to code '7'"):
            standards.load(conn, folder)
        assert conn.execute("SELECT count(*) FROM value_maps WHERE source_value = '歇业'"
                            ).fetchone() == (0,)
        elements = folder / "standards" / "elements.yaml"
        items = yaml.safe_load(elements.read_text(encoding="utf-8"))
        items[0]["sensitivity"] = 5
        elements.write_text(yaml.safe_dump(items, allow_unicode=True), encoding="utf-8")
        with pytest.raises(InvalidInput, match="DE00001: sensitivity"):
            standards.load(conn, _fix_maps(folder))


def _fix_maps(folder):
    shutil.copy(standards.DEFAULT_DIR / "standards" / "value_maps.yaml",
                folder / "standards" / "value_maps.yaml")
    return folder


def test_mapped_field_follows_its_element(database_url, tmp_path):
    with psycopg.connect(database_url, autocommit=True) as conn:
        standards.load(conn)
        conn.execute("INSERT INTO departments (id, name) VALUES ('scjgj', '市场监管局') "
                     "ON CONFLICT DO NOTHING")
        register_dataset(conn, "std.gov_people", "人员", "standard", "scjgj",
                         fields=[Field("sfzh", "text"), Field("xm", "text")])
        standards.map_field(conn, "std.gov_people", "sfzh", "DE00011")
        assert conn.execute("SELECT element_id, sensitivity, mask_kind FROM dataset_fields "
                            "WHERE dataset_id = 'std.gov_people' AND name = 'sfzh'"
                            ).fetchone() == ("DE00011", 3, "id_card")
        with pytest.raises(NotFound, match="data element DE99999"):
            standards.map_field(conn, "std.gov_people", "xm", "DE99999")
        with pytest.raises(NotFound, match=r"std\.gov_people has no field nope"):
            standards.map_field(conn, "std.gov_people", "nope", "DE00008")
        # the bureau lowers the element's level: the mapped field follows on the next load
        folder = _copy(tmp_path)
        path = folder / "standards" / "elements.yaml"
        items = yaml.safe_load(path.read_text(encoding="utf-8"))
        next(e for e in items if e["id"] == "DE00011")["sensitivity"] = 2
        path.write_text(yaml.safe_dump(items, allow_unicode=True), encoding="utf-8")
        standards.load(conn, folder)
        assert conn.execute("SELECT sensitivity FROM dataset_fields WHERE dataset_id = "
                            "'std.gov_people' AND name = 'sfzh'").fetchone() == (2,)
        standards.load(conn)  # back to the shipped files for the other tests
