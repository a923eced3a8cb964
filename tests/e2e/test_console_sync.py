"""The 数据汇聚 page (数据 → 数据汇聚): the system register, a source's connection test, a sync
run now, the run's rows and the rows it set aside, rows per table over time. A real MariaDB
(the 市场监管局 registry simulator) behind the source."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from datafoundation.runner import run_sync
from simulators.departments import enterprise_registry
from simulators.departments.mariadb_instance import MariaDB
from tests.e2e.conftest import Console, login, shoot
from tests.helpers import free_port


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    instance = MariaDB(tmp_path_factory.mktemp("mariadb-ui"), free_port())
    instance.start()
    conn = instance.connect()
    enterprise_registry.seed(conn, 200, table="firms_ui")
    conn.close()
    yield instance
    instance.stop()


def test_sync_page_main_path(page: Page, console: Console, registry: MariaDB, settings) -> None:
    admin = console.admin
    admin.post("/v1/departments", json={"id": "scjgj", "name": "市场监管局"})
    system = admin.post("/v1/systems", json={
        "slug": "scjg_ui", "name": "企业登记系统", "department": "scjgj", "vendor": "某软件公司",
        "dengbao_level": 2})
    assert system.status_code == 201, system.text
    source = admin.post("/v1/sources", json={
        "system_id": system.json()["id"], "name": "登记库", "kind": "mariadb",
        "password": registry.password,
        "settings": {"host": "127.0.0.1", "port": registry.port, "database": "registry",
                     "user": registry.user}}).json()
    # keyed on (uscc, name): the registry's duplicated firms are set aside by name
    sync = admin.post("/v1/syncs", json={
        "source_id": source["id"], "object": "firms_ui", "target_table": "firms",
        "mode": "full", "primary_key": ["uscc", "name"], "schedule": "*/30 * * * *"}).json()

    login(page, console, "admin", "/data?tab=sync")
    expect(page.locator("[data-test=sync-systems]")).to_contain_text("企业登记系统")
    page.click(f"[data-test=sync-edit-{system.json()['id']}]")  # edit: the vendor changes
    page.fill("[data-test=sync-new-system] input[placeholder='承建单位']", "新承建单位")
    page.click("[data-test=sync-new-system] button.primary")
    expect(page.locator("[data-test=sync-systems]")).to_contain_text("新承建单位")
    sources = page.locator("[data-test=sync-sources]")
    expect(sources).to_contain_text("登记库")
    expect(sources).to_contain_text("已加密保存")
    page.click(f"[data-test=sync-test-{source['id']}]")
    expect(sources.locator("[data-test=sync-probe]")).to_have_text("连接正常，12 列")
    page.click(f"[data-test=sync-run-{sync['id']}]")
    expect(page.locator(".toast").first).to_contain_text("已加入队列")

    run = run_sync(settings.database_url.get_secret_value(),
                   settings.secret_key.get_secret_value(), sync["id"])  # what a worker does
    page.reload()
    row = page.locator(f"[data-test=sync-runs] tr[data-run='{run}']")
    expect(row).to_contain_text("成功")
    expect(row).to_contain_text("raw_scjg_ui.firms")
    row.locator("[data-test=sync-aside]").click()
    aside = page.locator("[data-test=sync-aside-rows]")
    expect(aside).to_contain_text("appears twice in one batch")
    expect(page.locator("canvas").first).to_be_visible()  # rows per table over time
    shoot(page, console, "sync")
