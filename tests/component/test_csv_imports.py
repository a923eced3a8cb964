"""Every CSV import through the API on the real database (issue #13, item 17): files as
Excel and WPS save them (UTF-8 with a byte-order mark, GBK) are read, the answer says which
encoding was read, and rows are numbered as the spreadsheet shows them."""

from __future__ import annotations

import codecs
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from cityops.principal import Role
from cityops.settings import Settings
from datafoundation.economy.parse import CHINESE_HEADERS, uscc_check_char
from tests.api_kit import api_settings, bearer, ensure_profile, ok, register_gateway, unique
from tests.component.test_events_kit import Api, api_client, cst
from tests.conftest import BrokerFixture


@pytest.fixture(scope="module")
def client(settings: Settings, broker: BrokerFixture) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings(settings, broker))) as c:
        yield c


def _devices_csv(client: TestClient, tech: dict[str, str], ids: list[str]) -> str:
    gateway = register_gateway(client, tech)["gateway"]["id"]
    profile = ensure_profile(client, tech)
    lines = ["id,title,gateway,profile,address.host,address.port,address.unit_id"]
    lines += [f"{d},泵站{n}号电表,{gateway},{profile},10.0.0.1,502,{n}"
              for n, d in enumerate(ids, start=1)]
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize(("encode", "encoding"), [
    (lambda t: codecs.BOM_UTF8 + t.encode("utf-8"), "UTF-8 (with BOM)"),
    (lambda t: t.encode("gbk"), "GBK"),
])
def test_device_import_reads_excel_and_wps_files(client: TestClient, settings: Settings,
                                                 encode, encoding: str) -> None:
    tech = bearer(settings, "field_technician", "t-csv-tech")
    ids = [unique("csv"), unique("csv")]
    res = client.post("/v1/devices/import", content=encode(_devices_csv(client, tech, ids)),
                      headers={**tech, "Content-Type": "text/csv"})
    assert ok(res, 201) == {"imported": 2, "devices": ids, "encoding": encoding}
    assert ok(client.get(f"/v1/devices/{ids[1]}", headers=tech))["title"] == "泵站2号电表"


def test_device_import_refusals_name_the_spreadsheet_row_and_encoding(
        client: TestClient, settings: Settings) -> None:
    tech = bearer(settings, "field_technician", "t-csv-tech")
    ids = [unique("csv"), unique("csv")]
    text = _devices_csv(client, tech, ids).replace(f"{ids[1]},", f"{ids[1]},,", 1)
    lines = text.split("\r\n")
    text = "\r\n".join([lines[0], lines[1], "", lines[2]])  # an empty row 3: row 4 is bad
    res = client.post("/v1/devices/import", content=text.encode("gbk"),
                      headers={**tech, "Content-Type": "text/csv"})
    assert res.status_code == 422, res.text
    assert "(GBK read)" in res.json()["detail"]
    assert [r["row"] for r in res.json()["rows"]] == [4]
    res = client.post("/v1/devices/import", content=b"\xff\xfeid\x00\xd8",
                      headers={**tech, "Content-Type": "text/csv"})
    assert res.status_code == 422 and "UTF-16" in res.json()["detail"]


def _firm_rows() -> list[list[str]]:
    body = "913406219999988"
    code = body + "01" + uscc_check_char(body + "01")
    good = [code, "濉溪县编码测试厂", "33 金属制品业", "韩村镇", "小型", "私营", "2021-01",
            "100", "20", "5", "3", "1000"]
    return [CHINESE_HEADERS, good, [*good[:6], "2021-02", "-5", *good[8:]]]


def test_economy_import_reads_gbk_and_numbers_rows_like_a_spreadsheet(
        settings: Settings) -> None:
    with api_client(settings, cst(2026, 11, 23, 10, 0)) as api:
        api: Api
        api.person("t-csv-loader", Role.DEPARTMENT_STAFF, api.department(unique("tjj")))
        rows = _firm_rows()
        text = "\r\n".join(",".join(r) for r in [rows[0], [], rows[1], rows[2]]) + "\r\n"
        res = api.post("t-csv-loader", "/v1/economy/imports", params={"dry_run": True},
                       files={"file": ("规上工业.csv", text.encode("gbk"), "text/csv")})
        assert res.status_code == 422, res.text
        assert [r["row"] for r in res.json()["rows"]] == [4]  # header 1, empty 2, good 3
        assert "(GBK read)" in res.json()["detail"]
        text = "\r\n".join(",".join(r) for r in rows[:2])
        done = api.ok("t-csv-loader", "POST", "/v1/economy/imports", 201, params={
            "dry_run": True}, files={"file": ("a.csv", codecs.BOM_UTF8 + text.encode(),
                                              "text/csv")})
        assert done["rows_total"] == 1 and done["encoding"] == "UTF-8 (with BOM)"
