"""The field technician's and the ops engineer's day in Chromium (issue 18): a gateway
registered from the devices page (its credentials shown once, and they work on the broker),
a CSV import with a bad row refused by number and reason in Chinese and the other rows then
imported; files refused before sending. The ops engineer's network form: a bad CIDR refused
in the browser, in Chinese; a good one queued as an audited job that appears in the job list
(this folder has no cloud worker: the job stays queued, its creation and audit are what the
page does)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator

import paho.mqtt.client as paho
import psycopg
import pytest
from playwright.sync_api import Page, expect

from cityops import wire
from tests.e2e.conftest import Console, login, shoot
from tests.helpers import wait_for


@pytest.fixture(scope="module")
def technician(console: Console) -> str:
    name, password = f"tech-{uuid.uuid4().hex[:6]}", secrets.token_urlsafe(12)
    made = console.admin.post("/v1/users", json={"username": name, "password": password,
                                                  "role": "field_technician"})
    assert made.status_code == 201, made.text
    console.users["field_technician"] = (name, password)
    return name


def _broker_accepts(url: str, username: str, password: str) -> bool:
    host, port = url.removeprefix("mqtt://").split(":")
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5,
                         client_id=wire.gateway_client_id(username))
    client.username_pw_set(username, password)
    codes: list = []
    client.on_connect = lambda _c, _u, _f, code, _p: codes.append(code)
    client.connect(host, int(port))
    client.loop_start()
    try:
        wait_for(lambda: codes, timeout_s=10, what="CONNACK")
        return not codes[0].is_failure
    finally:
        client.loop_stop()
        client.disconnect()


@pytest.fixture
def cleanup(console: Console) -> Iterator[dict]:
    made: dict = {"devices": [], "gateways": []}
    yield made
    for device in made["devices"]:
        console.admin.delete(f"/v1/devices/{device}")
    for gateway in made["gateways"]:
        console.admin.post(f"/v1/gateways/{gateway}/revoke")


def test_a_technician_registers_a_gateway_and_imports_devices(
    page: Page, console: Console, technician: str, cleanup: dict
) -> None:
    gateway = f"gw-f18-{uuid.uuid4().hex[:6]}"
    cleanup["gateways"].append(gateway)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    login(page, console, "field_technician", "/devices")
    page.click("[data-test=onboard-tabs] [data-tab=gateway]")
    form = page.locator("[data-test=gateway-form]")
    form.locator("input[name=id]").fill("GW Pump")
    form.locator("button[type=submit]").click()
    expect(form.locator("[data-field=id]")).to_contain_text("小写字母")  # refused here
    form.locator("input[name=id]").fill(gateway)
    form.locator("select[name=department]").select_option("urban-management")
    form.locator("button[type=submit]").dblclick()  # one request: the button waits for it
    shown = page.locator("[data-test=gateway-credentials]")
    expect(shown).to_contain_text("只显示这一次")
    assert sum(u.endswith("/v1/gateways") for u in posts) == 1
    password = page.locator("[data-test=mqtt-password]").inner_text()
    mqtt_url = console.admin.get(f"/v1/gateways/{gateway}").json()
    assert "password" not in str(mqtt_url)  # the registry never gives it back
    assert _broker_accepts(shown.locator(".mono").first.inner_text(), gateway, password)
    page.click("[data-test=credentials-stored]")
    expect(shown).to_have_count(0)

    page.click("[data-test=onboard-tabs] [data-tab=import]")
    upload = page.locator("[data-test=csv-file]")
    upload.set_input_files(files=[{"name": "x.csv", "mimeType": "text/csv",
                                   "buffer": b"id,gateway,profile,colour\nx,y,z,red\n"}])
    expect(page.locator("[data-test=csv-problem]")).to_contain_text("不认识的列 colour")
    upload.set_input_files(files=[{"name": "x.csv", "mimeType": "text/csv",
                                   "buffer": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"}])
    expect(page.locator("[data-test=csv-problem]")).to_contain_text("不是 CSV 文本文件")
    upload.set_input_files(files=[{"name": "big.csv", "mimeType": "text/csv",
                                   "buffer": b"id,gateway,profile\n" + b"x" * (5 << 20)}])
    expect(page.locator("[data-test=csv-problem]")).to_contain_text("超过 4 MB 的上限，未上传")
    assert not any(u.endswith("/v1/devices/import") for u in posts)
    ids = [f"{gateway}-ups{n}" for n in (1, 2, 3)]
    cleanup["devices"].extend(ids)
    rows = [f"{ids[0]},机房UPS甲,{gateway},ups-online,urban-management,127.0.0.1,1502,1",
            f"{ids[1]},机房UPS乙,gw-nowhere,ups-online,urban-management,127.0.0.1,1502,2",
            f"{ids[2]},机房UPS丙,{gateway},ups-online,urban-management,127.0.0.1,1502,3"]
    csv = "id,title,gateway,profile,department,address.host,address.port,address.unit_id\n"
    upload.set_input_files(files=[{"name": "ups.csv", "mimeType": "text/csv",
                                   "buffer": (csv + "\n".join(rows) + "\n").encode("gbk")}])
    expect(page.locator("[data-test=csv-ready]")).to_contain_text("3 行，按 GBK 读取")
    page.click("[data-test=csv-import]")
    report = page.locator("[data-test=csv-report]")
    expect(report).to_contain_text("3 行中有 1 行被拒")
    expect(report.locator("tr[data-row='3']")).to_contain_text("网关 未在平台登记")
    expect(report.locator("tr[data-row='3']")).to_contain_text(ids[1])
    page.evaluate("getSelection().removeAllRanges()")  # the double click's selection
    shoot(page, console, "devices-import")
    page.click("[data-test=csv-import-accepted]")
    expect(page.locator("[data-test=csv-done]")).to_contain_text("已导入 2 台设备")
    listed = console.admin.get("/v1/devices", params={"gateway": gateway}).json()["items"]
    assert sorted(d["id"] for d in listed) == [ids[0], ids[2]]
    assert {d["title"] for d in listed} == {"机房UPS甲", "机房UPS丙"}
    page.click("[data-test=onboard-tabs] [data-tab=device]")  # the form follows the profile
    page.locator("[data-test=device-form] select[name=profile]").select_option("ups-online")
    expect(page.locator("[data-test=device-form] input[name='address.unit_id']")).to_have_value("1")
    assert page.evaluate("[...window.__i18nMissing]") == []


@pytest.fixture
def queued(database_url: str) -> Iterator[list[str]]:
    """Jobs this test queued, taken off the queue after it: a cloud worker started later in
    the session's database must not run them."""
    jobs: list[str] = []
    yield jobs
    with psycopg.connect(database_url) as conn:
        for job in jobs:
            conn.execute("DELETE FROM procrastinate_jobs WHERE args->>'job_id' = %s", (job,))
            conn.execute("DELETE FROM jobs WHERE id = %s", (job,))


def test_an_ops_engineer_queues_a_network_with_a_checked_cidr(
    page: Page, console: Console, database_url: str, queued: list[str]
) -> None:
    name = f"net-f18-{uuid.uuid4().hex[:6]}"
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    login(page, console, "ops_engineer", "/cloud")
    page.click("[data-test=job-kinds] [data-kind=network]")
    form = page.locator("[data-test=job-form-network]")
    form.locator("input[name=project]").fill("cgj-f18")
    form.locator("input[name=name]").fill(name)
    form.locator("input[name=cidr]").fill("10.20.0.5/24")
    form.locator("button[type=submit]").click()
    cidr = form.locator("[data-field=cidr]")
    expect(cidr).to_contain_text("主机位不为 0：网络地址应为 10.20.0.0/24")
    form.locator("input[name=cidr]").fill("10.20.0.0/33")
    form.locator("button[type=submit]").click()
    expect(cidr).to_contain_text("前缀长度应在 0 到 32 之间")
    assert not any(u.endswith("/v1/cloud/networks") for u in posts)  # refused in the browser
    form.locator("input[name=cidr]").fill("10.20.0.0/24")
    form.locator("button[type=submit]").dblclick()
    output = page.locator("[data-test=job-output-state]")
    expect(output).to_contain_text("排队")  # no worker in this folder: the job waits
    with psycopg.connect(database_url) as conn:
        job = wait_for(lambda: conn.execute(
            "SELECT id, requested_by, params->>'cidr' FROM jobs WHERE kind = 'network.ensure'"
            " AND params->>'name' = %s", (name,)).fetchall(), what="the job's row")
        queued.extend(str(row[0]) for row in job)
        audit = conn.execute(
            "SELECT actor, outcome FROM audit_log WHERE action = 'POST /v1/cloud/networks'"
            " AND detail::text LIKE %s", (f"%{job[0][0]}%",)).fetchall()
    assert len(job) == 1 and job[0][1:] == (console.users["ops_engineer"][0], "10.20.0.0/24")
    with psycopg.connect(database_url) as conn:  # queued for the API's cloud
        assert conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE args->>'job_id' = %s"
                            " AND status = 'todo'", (str(job[0][0]),)).fetchone()[0] == 1
    assert sum(u.endswith("/v1/cloud/networks") for u in posts) == 1  # the double click
    assert audit == [(console.users["ops_engineer"][0], "ok")]
    expect(page.locator(f"tr[data-job='{job[0][0]}']")).to_contain_text("network.ensure")
    page.evaluate("getSelection().removeAllRanges()")
    shoot(page, console, "cloud-forms")
    for kind in ("project", "server", "volume", "floating_ip"):  # every form has its words
        page.click(f"[data-test=job-kinds] [data-kind={kind}]")
        expect(page.locator(f"[data-test=job-form-{kind}]")).to_be_visible()
    assert page.evaluate("[...window.__i18nMissing]") == []


def test_an_ansible_runs_output_per_host_without_secrets(
    page: Page, console: Console, database_url: str, queued: list[str]
) -> None:
    with psycopg.connect(database_url) as conn:
        job = str(conn.execute(
            "INSERT INTO jobs (kind, params, state, progress, detail, requested_by, started_at,"
            " finished_at) VALUES ('playbook.run', '{}', 'failed', 100, 'edge-gw-02: failed',"
            " 'ops', now(), now()) RETURNING id").fetchone()[0])
        queued.append(job)
        conn.cursor().executemany(
            "INSERT INTO job_events (job_id, message, host, task, status) VALUES (%s, %s, %s,"
            " %s, %s)", [(job, "", "edge-gw-01", "install the agent", "changed"),
                         (job, "login refused: password=hunter2", "edge-gw-02",
                          "install the agent", "failed")])
    login(page, console, "ops_engineer", "/cloud")
    page.click(f"tr[data-job='{job}']")
    output = page.locator("[data-test=job-output]")
    expect(output.locator("tr[data-host='edge-gw-01']")).to_contain_text("已变更")
    failed = output.locator("tr[data-host='edge-gw-02']")
    expect(failed).to_contain_text("失败")
    expect(failed).to_contain_text("password=***")
    expect(page.locator("[data-test=job-output-state]")).to_contain_text("2 台主机")
    assert "hunter2" not in page.content()


def test_a_devices_history_over_a_chosen_period_in_minute_means(
    page: Page, console: Console, technician: str
) -> None:
    login(page, console, "field_technician", f"/devices/{console.devices['ups']}")
    page.click("[data-test=ranges] [data-range=period]")
    period = page.locator("[data-test=period]")
    period.locator("input[name=from]").fill("2026-01-02T10:00")
    period.locator("input[name=to]").fill("2026-01-01T10:00")
    period.locator("[data-test=period-show]").click()
    expect(page.locator("[data-test=period-error]")).to_have_text("结束时间应晚于开始时间")
    period.locator("input[name=from]").fill("2026-01-01T10:00")
    period.locator("input[name=to]").fill("2026-03-01T10:00")
    period.locator("[data-test=period-show]").click()
    expect(page.locator("[data-test=period-error]")).to_have_text("时段最长 31 天")
    start, end = page.evaluate("""() => [-3600000, 60000].map((ms) => {
        const d = new Date(Date.now() + ms);  // the last hour in the browser's own time
        return new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16); })""")
    period.locator("input[name=from]").fill(start)
    period.locator("input[name=to]").fill(end)
    with page.expect_response(lambda r: "/readings?" in r.url and "bucket=1m" in r.url) as got:
        period.locator("[data-test=period-show]").click()
    buckets = got.value.json()["buckets"]
    assert buckets and all(b["count"] >= 1 for b in buckets)  # the UPS's readings, per minute
    expect(page.locator("text=按 60 秒聚合")).to_be_visible()
    expect(page.locator("[data-test=period-error]")).to_have_count(0)
