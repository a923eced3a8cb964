"""The quality page (数据 → 数据质量) as a department's staff sees it: its own dataset's scores,
correction tasks and last run with a masked sample; another department's dataset not at all."""

from __future__ import annotations

import psycopg
from playwright.sync_api import Page, expect

from datafoundation.governance import Field, register_dataset
from datafoundation.quality import load_rules, run_dataset
from tests.e2e.conftest import Console, login, shoot

OURS, THEIRS = "raw_e2e_cg.parts", "raw_e2e_sc.firms"
RULES = """
rules:
  - {name: address_present, kind: not_null, columns: [address], hard: true}
  - {name: code_form, kind: format, column: code, regex: '^[A-Z]{2}[0-9]{4}$'}
"""


def _seed(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO departments (id, name) VALUES ('scjgj', '市场监管局') "
                     "ON CONFLICT DO NOTHING")
        for dataset, dept in ((OURS, "urban-management"), (THEIRS, "scjgj")):
            schema = dataset.split(".")[0]
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            conn.execute(f"DROP TABLE IF EXISTS {dataset}")
            conn.execute(f"CREATE TABLE {dataset} (id int PRIMARY KEY, code text, "
                         "address text, phone text)")
            conn.execute(f"INSERT INTO {dataset} VALUES (1, 'JG0001', '濉溪镇沱河路1号', "
                         "'13905611234'), (2, 'JG0002', '', '13905615678'), "
                         "(3, 'bad', '临涣镇古城街2号', '13905619999')")
            register_dataset(conn, dataset, f"{dataset} 部件", "raw", dept, primary_key=["id"],
                             fields=[Field("id", "integer"), Field("code", "text"),
                                     Field("address", "text"),
                                     Field("phone", "text", mask_kind="phone", sensitivity=2)])
            load_rules(conn, RULES, "e2e", dataset)
    for dataset in (OURS, THEIRS):
        run_dataset(database_url, dataset)


def test_department_staff_see_their_quality(page: Page, console: Console,
                                            database_url: str) -> None:
    _seed(database_url)
    login(page, console, "department_staff", "/data?tab=quality")
    tasks = page.locator("[data-test=quality-tasks]")
    expect(tasks).to_contain_text(OURS)
    expect(tasks).to_contain_text("address_present")
    expect(tasks).not_to_contain_text(THEIRS)
    expect(page.locator("[data-test=quality-scores]")).to_contain_text("urban-management")
    expect(page.locator("[data-test=quality-scores]")).not_to_contain_text("scjgj")
    results = page.locator("[data-test=quality-results]")
    expect(results).to_contain_text("code_form")
    results.locator("tr", has_text="address_present").click()
    expect(results).to_contain_text("139****5678")  # the sample, masked
    expect(results).not_to_contain_text("13905615678")
    # its department's datasets only (other tests of the session may have given it more)
    options = page.locator("[data-test=quality-dataset] option")
    expect(options.filter(has_text=OURS)).to_have_count(1)
    expect(options.filter(has_text=THEIRS)).to_have_count(0)
    shoot(page, console, "quality")
