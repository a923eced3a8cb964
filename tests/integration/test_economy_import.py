"""Industrial economy: the demo generator's data imported through the API (CSV and Excel),
figures checked against sums computed here from the file itself, the per-row report of a
bad file, electricity from a platform meter, and the CLI the demo uses."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
import orjson
import psycopg
import pytest

from cityops.principal import Role
from datafoundation.economy.generate import generate
from datafoundation.economy.parse import CHINESE_HEADERS, uscc_check_char
from tests.component.test_events_kit import Api, api_client, cst, unique
from tests.conftest import Processes

CSV_TEXT = generate(firms=60, seed=7, until=date(2026, 10, 1))
MEASURES = ("revenue", "value_added", "profit", "tax", "electricity_kwh")
COLS = dict(zip(("code", "name", "industry", "town", "size", "ownership", "month", *MEASURES),
                range(12), strict=True))


def _firms(text: str, first: str, last: str) -> dict[str, dict]:
    """Per enterprise sums over months first..last (YYYY-MM), straight from the CSV."""
    sums: dict[str, dict] = defaultdict(lambda: {m: Decimal(0) for m in MEASURES})
    for row in list(csv.reader(io.StringIO(text)))[1:]:
        if first <= row[COLS["month"]] <= last:
            firm = sums[row[COLS["code"]]]
            firm["town"] = row[COLS["town"]]
            for m in MEASURES:
                firm[m] += Decimal(row[COLS[m]])
    return dict(sums)


@pytest.fixture(scope="module")
def api(settings):
    with api_client(settings, cst(2026, 11, 23, 10, 0)) as api:
        api.person("eco-loader", Role.DEPARTMENT_STAFF, api.department(unique("tjj"), "县统计局"))
        api.person("eco-viewer", Role.VIEWER)
        res = api.post("eco-loader", "/v1/economy/imports",
                       files={"file": ("规上工业2026.csv", CSV_TEXT.encode(), "text/csv")})
        assert res.status_code == 201, res.text
        api.imported = res.json()
        yield api


def test_import_counts_rows_and_enterprises(api: Api) -> None:
    rows = CSV_TEXT.strip().splitlines()[1:]
    assert api.imported["rows_total"] == api.imported["rows_loaded"] == len(rows)
    assert api.imported["enterprises"] == 60
    assert api.post("eco-viewer", "/v1/economy/imports",
                    files={"file": ("x.csv", CSV_TEXT.encode(), "text/csv")}).status_code == 403


def test_overview_matches_sums_computed_from_the_file(api: Api) -> None:
    board = api.ok("eco-viewer", "GET", "/v1/economy/overview", params={"month": "2026-10-01"})
    now, before = _firms(CSV_TEXT, "2026-01", "2026-10"), _firms(CSV_TEXT, "2025-01", "2025-10")
    assert board["firms"] == len(now)
    for m in MEASURES:
        assert board["totals"][m] == pytest.approx(float(sum(f[m] for f in now.values())),
                                                   abs=0.02)
    same = [c for c in now if c in before]
    assert board["yoy"]["firms_compared"] == len(same) < len(now), "newcomers are left out"
    grew = sum(now[c]["revenue"] for c in same) / sum(before[c]["revenue"] for c in same) - 1
    assert board["yoy"]["revenue"] == pytest.approx(float(grew), abs=1e-4)
    losing = [c for c, f in now.items() if f["profit"] < 0]
    assert board["loss_making"]["firms"] == len(losing) > 0
    top = max(now, key=lambda c: now[c]["revenue"])
    assert board["top_by_revenue"][0]["code"] == top
    towns = defaultdict(Decimal)
    for f in now.values():
        towns[f["town"]] += f["revenue"]
    got = {g["town"]: g["revenue"] for g in board["by_town"]}
    assert got == pytest.approx({t: float(v) for t, v in towns.items()}, abs=0.02)
    assert sum(g["firms"] for g in board["by_size"]) == len(now)
    csv_out = api.get("eco-viewer", "/v1/economy/overview",
                      params={"month": "2026-10-01", "format": "csv", "section": "by_town"})
    assert csv_out.status_code == 200 and next(iter(towns)) in csv_out.text


def _code(serial: int) -> str:
    body = f"9134062199999{serial:04d}"
    return body + uscc_check_char(body)


def test_a_bad_file_is_reported_row_by_row_and_loads_nothing(api: Api) -> None:
    good = [_code(1), "濉溪县测试一厂", "33 金属制品业", "韩村镇", "小型", "私营", "2021-01",
            "100", "20", "5", "3", "1000"]
    bad_code = [good[0][:-1] + ("0" if good[0][-1] != "0" else "1"), *good[1:]]
    negative = [_code(2), "濉溪县测试二厂", *good[2:7], "-100", "20", "5", "3", "1000"]
    text = "\n".join(",".join(r) for r in (CHINESE_HEADERS, good, bad_code, negative, good))
    before = api.ok("eco-viewer", "GET", "/v1/economy/imports")
    res = api.post("eco-loader", "/v1/economy/imports",
                   files={"file": ("bad.csv", text.encode(), "text/csv")})
    assert res.status_code == 422 and res.json()["code"] == "invalid_input"
    report = {r["row"]: r["errors"] for r in res.json()["rows"]}
    assert sorted(report) == [3, 4, 5]
    assert "统一社会信用代码" in report[3][0]
    assert "revenue" in report[4][0] and "repeats row 2" in report[5][0]
    assert api.ok("eco-viewer", "GET", "/v1/economy/imports") == before


def test_excel_files_import_too(api: Api) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(CHINESE_HEADERS)
    for month in (1, 2):
        sheet.append([_code(3), "濉溪县表格厂", "13 农副食品加工业", "百善镇", "中型", "集体",
                      date(2021, month, 1), 500.5, 110, -12.5, 20, 40000])
    data = io.BytesIO()
    book.save(data)
    xlsx = ("a.xlsx", data.getvalue(),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    dry = api.ok("eco-loader", "POST", "/v1/economy/imports", 201, files={"file": xlsx},
                 params={"dry_run": True})
    assert dry["batch_id"] is None and dry["rows_loaded"] == 0 and dry["rows_total"] == 2
    done = api.ok("eco-loader", "POST", "/v1/economy/imports", 201, files={"file": xlsx})
    assert done["rows_loaded"] == 2
    board = api.ok("eco-viewer", "GET", "/v1/economy/overview", params={"month": "2021-02-01"})
    assert board["totals"]["revenue"] == 1001.0 and board["loss_making"]["firms"] == 1


def test_electricity_can_come_from_a_platform_meter(api: Api) -> None:
    code = next(iter(_firms(CSV_TEXT, "2026-10", "2026-10")))
    device = unique("eco-meter")
    with psycopg.connect(api.url) as conn:
        conn.execute("INSERT INTO profiles (id, protocol, category, body) VALUES ('eco-pm',"
                     " 'modbus', 'power', %s) ON CONFLICT DO NOTHING",
                     (orjson.dumps({"model": "eco-pm"}).decode(),))
        conn.execute("INSERT INTO gateways (id) VALUES (%s)", (f"gw-{device}",))
        conn.execute("INSERT INTO devices (id, gateway_id, profile_id) VALUES (%s, %s,"
                     " 'eco-pm')", (device, f"gw-{device}"))
        point = conn.execute("INSERT INTO points (device_id, name, data_type) VALUES"
                             " (%s, 'energy_kwh', 'float64') RETURNING id", (device,)).fetchone()[0]
        start = cst(2026, 10, 1, 0, 0)
        for day, kwh in ((0, 10_000.0), (15, 10_350.0), (30, 10_600.0), (31, 99_999.0)):
            conn.execute("INSERT INTO readings (time, point_id, value) VALUES (%s, %s, %s)",
                         (start + timedelta(days=day, hours=1), point, kwh))
    before = api.ok("eco-viewer", "GET", "/v1/economy/overview", params={"month": "2026-10-01"})
    res = api.call("eco-loader", "PUT", f"/v1/economy/enterprises/{code}/meter",
                   json={"device": device, "point": "energy_kwh"})
    assert res.status_code == 204, res.text
    after = api.ok("eco-viewer", "GET", "/v1/economy/overview", params={"month": "2026-10-01"})
    imported_oct = _firms(CSV_TEXT, "2026-10", "2026-10")[code]["electricity_kwh"]
    # 1 Nov 01:00 in the county belongs to November: October's rise is 600 kWh
    expected = before["totals"]["electricity_kwh"] - float(imported_oct) + 600.0
    assert after["totals"]["electricity_kwh"] == pytest.approx(expected, abs=0.5)
    assert after["metered_firms"] == 1
    bad = api.call("eco-loader", "PUT", f"/v1/economy/enterprises/{code}/meter",
                   json={"device": device, "point": "nope"})
    assert bad.status_code == 422


def test_the_cli_generates_and_imports(processes: Processes, tmp_path: Path,
                                       database_url: str) -> None:
    out = tmp_path / "demo.csv"
    said = processes.run("economy", "generate", "--out", str(out), "--firms", "25",
                         "--until", "2024-06")
    rows = out.read_text(encoding="utf-8").strip().splitlines()[1:]
    assert f"wrote {len(rows)} rows for 25 enterprises" in said
    assert "imported" in processes.run("economy", "import", str(out))
    with psycopg.connect(database_url) as conn:
        loaded = conn.execute("SELECT count(*) FROM enterprise_indicators WHERE month"
                              " BETWEEN '2023-01-01' AND '2024-06-01'").fetchone()[0]
    assert loaded == len(rows)
