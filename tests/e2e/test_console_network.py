"""The 网络 page in Chromium: the topology of three network devices (an LLDP link, a down
port with its alarm) drawn as a graph; a click on a device shows its port table and the
chosen port's history chart; an ops engineer declares a link (a wrong port refused in
Chinese) and removes it; words in Chinese."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.conftest import Console, login
from tests.integration.test_network_topology import _seed


def test_network_page_shows_the_topology_and_a_devices_ports(page: Page, console: Console,
                                                              database_url: str) -> None:
    ids = _seed(database_url)
    login(page, console, "operator", "/network")
    expect(page.locator("[data-test=nodes] [data-node]").first).to_be_visible()
    for key in "abc":
        expect(page.locator(f"[data-node='{ids[key]}']")).to_be_visible()
    expect(page.locator("[data-test=topology] canvas")).to_be_visible()
    expect(page.locator(f"[data-node='{ids['a']}']")).to_contain_text("异常")  # port3 down
    down = page.locator("[data-test=down-ports]")
    expect(down).to_contain_text("Gi0/3")
    expect(down).to_contain_text("Gi0/3 down")  # its alarm
    page.locator(f"[data-node='{ids['a']}']").click()
    table = page.locator("[data-test=port-table]")
    expect(table.locator("tr[data-port]")).to_have_count(3)
    expect(table.locator("tr[data-port='port1']")).to_contain_text("40.0%")
    expect(table.locator("tr[data-port='port3']")).to_contain_text("中断")
    table.locator("tr[data-port='port1']").click()
    expect(table.locator("tr[data-port='port1']")).to_have_class("clickable picked")
    expect(page.locator("[data-test=port-history] canvas")).to_be_visible()
    expect(page.locator("text=Gi0/1 近一小时流量")).to_be_visible()
    expect(page.locator("[data-test=declare-link]")).to_have_count(0)  # engineers only


def test_an_engineer_declares_and_removes_a_link(page: Page, console: Console,
                                                 database_url: str) -> None:
    ids = _seed(database_url)
    login(page, console, "ops_engineer", "/network")
    form = page.locator("[data-test=declare-link]")
    form.locator("select[name=device_a]").select_option(ids["a"])
    form.locator("input[name=port_a]").fill("port3")
    form.locator("select[name=device_b]").select_option(ids["c"])
    form.locator("input[name=port_b]").fill("if9")
    form.locator("button[type=submit]").click()
    expect(page.locator("[data-test=link-error]")).to_contain_text("输入有误")
    expect(page.locator("[data-test=link-error]")).to_contain_text("no port 'if9'")
    form.locator("input[name=port_b]").fill("if1")
    form.locator("button[type=submit]").click()
    row = page.locator("[data-test=declared-links] tr", has_text=ids["c"])
    expect(row).to_have_count(1)
    expect(page.locator("[data-test=down-ports]")).to_be_visible()
    row.locator("[data-test=remove-link]").click()
    expect(row).to_have_count(0)
