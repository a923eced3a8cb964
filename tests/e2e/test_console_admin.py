"""The administrators' console page (管理, issue 18) in the browser, each role doing its page's
main action, the result checked through the API: the auditor filters, opens, exports (itself
audited) and sees the chain intact; the data administrator writes an alarm rule (errors beside
their fields, a preview, switched off) and an event category with a time limit; the system
administrator creates and disables a person; the security administrator gives a role, makes an
API key shown once and revokes it, and lifts a lockout (三员分立)."""

from __future__ import annotations

import csv
import io
import secrets
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Console, login, shoot
from tests.e2e.test_console_i18n import RAW_KEY, VISIBLE_TEXT


@pytest.fixture(scope="module")
def admins(console: Console) -> dict[str, str]:
    """A data, a security and an audit administrator, added to console.users."""
    suffix = uuid.uuid4().hex[:6]
    for role in ("data_admin", "security_admin", "audit_admin"):
        name, password = f"{role.replace('_', '-')}-{suffix}", secrets.token_urlsafe(12)
        made = console.admin.post("/v1/users", json={"username": name, "password": password,
                                                     "role": role})
        assert made.status_code == 201, made.text
        console.users[role] = (name, password)
    person = f"e2e-person-{suffix}"  # whose role the security administrator changes
    made = console.admin.post("/v1/users", json={"username": person, "role": "viewer",
                                                 "password": secrets.token_urlsafe(12)})
    assert made.status_code == 201, made.text
    return {"suffix": suffix, "person": person}


def _no_raw_words(page: Page) -> None:
    assert not page.evaluate("[...(window.__i18nMissing || [])]")
    shown = set(m.group(0) for m in RAW_KEY.finditer(page.evaluate(VISIBLE_TEXT)))
    assert not shown, shown


def test_the_auditor_filters_opens_exports_and_verifies(
    page: Page, console: Console, admins: dict
) -> None:
    marker = f"nobody-{admins['suffix']}"
    # a refused change with a target nobody else writes: the row the auditor looks for
    assert console.admin.patch(f"/v1/users/{marker}", json={"disabled": True}).status_code == 404
    login(page, console, "audit_admin", "/")
    expect(page).to_have_url(f"{console.url}/admin")  # no wall for the auditor: their page
    expect(page.locator("[data-test=audit-chain]")).to_contain_text("哈希链完整")
    page.fill("[data-test=audit-filter] input[name=target]", marker)
    page.select_option("[data-test=audit-filter] select[name=outcome]", "invalid")
    page.click("[data-test=audit-filter] button[type=submit]")
    rows = page.locator("[data-test=audit-table] tr[data-entry]")
    expect(rows).to_have_count(1)
    rows.first.click()
    entry = page.locator("[data-test=audit-entry]")
    expect(entry).to_contain_text(f"/v1/users/{marker}")
    expect(entry).to_contain_text(console.users["admin"][0])
    _no_raw_words(page)
    shoot(page, console, "admin-audit")
    with page.expect_download() as got:
        page.click("[data-test=audit-export]")
    exported = list(csv.DictReader(io.StringIO(Path(got.value.path()).read_text("utf-8"))))
    assert [r["target"] for r in exported] == [f"/v1/users/{marker}"]
    auditor = console.client("audit_admin")
    exports = auditor.get("/v1/audit", params={"action": "audit.export",
                                               "actor": console.users["audit_admin"][0]}).json()
    assert exports["items"][0]["detail"]["target"] == marker


def test_the_data_admin_writes_a_rule_with_errors_beside_fields(
    page: Page, console: Console, admins: dict
) -> None:
    rule = f"e2e-rule-{admins['suffix']}"
    login(page, console, "data_admin", "/admin?tab=rules")
    page.click("[data-test=rule-new]")
    form = page.locator("[data-test=rule-form]")
    form.locator("input[name=id]").fill(rule)
    form.locator("input[name=point]").fill("e2e_point_never_read")
    form.locator("button[type=submit]").click()  # neither limit: refused before sending
    expect(form.locator("[data-field=above]")).to_contain_text("须填且只填一项")
    form.locator("input[name=above]").fill("30")
    form.locator("input[name=for_s]").fill("-5")  # the API's refusal, beside its field
    form.locator("button[type=submit]").click()
    expect(form.locator("[data-field=for_s]")).to_contain_text("输入有误")
    assert console.client("data_admin").get(f"/v1/rules/{rule}").status_code == 404
    form.locator("input[name=for_s]").fill("0")
    page.click("[data-test=rule-preview]")
    expect(page.locator("[data-test=rule-preview-result]")).to_contain_text("将产生 0 条告警")
    form.locator("button[type=submit]").click()
    row = page.locator(f"[data-test=rules] tr[data-rule='{rule}']")
    expect(row).to_contain_text("已启用")
    _no_raw_words(page)
    row.locator("[data-test=rule-toggle]").click()
    expect(row).to_contain_text("已停用")
    saved = console.client("data_admin").get(f"/v1/rules/{rule}").json()
    assert (saved["enabled"], saved["body"]["above"], saved["body"]["target"]["point"]) == (
        False, 30, "e2e_point_never_read")


def test_the_data_admin_adds_a_category_and_its_time_limit(
    page: Page, console: Console, admins: dict
) -> None:
    code = f"F9{admins['suffix'][:4].upper()}"
    login(page, console, "data_admin", "/admin?tab=categories")
    form = page.locator("[data-test=category-form]")
    form.locator("input[name=code]").fill("f9")
    form.locator("input[name=major]").fill("公用设施")
    form.locator("input[name=minor]").fill("测试井盖")
    form.locator("button[type=submit]").click()
    expect(form.locator("[data-field=code]")).to_contain_text("大写字母开头")
    form.locator("input[name=code]").fill(code)
    form.locator("select[name=department_id]").select_option("urban-management")
    form.locator("button[type=submit]").click()
    expect(page.locator(f"[data-test=categories] tr[data-category='{code}']")).to_contain_text(
        "测试井盖")
    limit = page.locator("[data-test=limit-form]")
    limit.locator("select[name=urgency]").select_option("urgent")
    limit.locator("select[name=step]").select_option("dispose")
    limit.locator("input[name=amount]").fill("3")
    limit.locator("select[name=unit]").select_option("work_hours")
    limit.locator("button[type=submit]").click()
    expect(page.locator(f"[data-limit='{code}/urgent/dispose']")).to_contain_text("3 个工作小时")
    _no_raw_words(page)
    shoot(page, console, "admin-categories")
    known = console.client("dispatcher").get("/v1/event-categories").json()
    assert {"code": code, "department_id": "urban-management"}.items() <= next(
        c for c in known["categories"] if c["code"] == code).items()
    assert [(t["amount"], t["unit"]) for t in known["time_limits"]
            if t["category_code"] == code] == [(3, "work_hours")]


def test_the_system_admin_creates_and_disables_a_person(
    page: Page, console: Console, admins: dict
) -> None:
    name = f"e2e-staff-{admins['suffix']}"
    login(page, console, "admin", "/admin?tab=users")
    form = page.locator("[data-test=user-form]")
    form.locator("input[name=username]").fill(name)
    form.locator("input[name=password]").fill("short")
    form.locator("select[name=role]").select_option("department_staff")
    form.locator("button[type=submit]").click()
    expect(form.locator("[data-field=password]")).to_contain_text("至少 8 位")
    expect(form.locator("[data-field=department]")).to_contain_text("须指定部门")
    form.locator("input[name=password]").fill(secrets.token_urlsafe(12))
    form.locator("select[name=department]").select_option("water-resources")
    form.locator("button[type=submit]").click()
    row = page.locator(f"[data-test=users] tr[data-user='{name}']")
    expect(row).to_contain_text("部门人员")
    expect(row.locator("[data-test=user-role]")).to_have_count(0)  # roles: security admin's
    row.locator("[data-test=user-disable]").click()
    expect(row).to_contain_text("已停用")
    users = console.admin.get("/v1/users", params={"limit": 1000}).json()["items"]
    person = next(u for u in users if u["username"] == name)
    assert (person["role"], person["department"], person["disabled"]) == (
        "department_staff", "water-resources", True)


def test_the_security_admin_gives_a_role_makes_a_key_and_lifts_a_lockout(
    page: Page, console: Console, admins: dict, database_url: str
) -> None:
    viewer = admins["person"]
    login(page, console, "security_admin", "/admin?tab=users")
    expect(page.locator("[data-test=user-form]")).to_have_count(0)  # people: the admin's
    page.locator(f"tr[data-user='{viewer}'] [data-test=user-role]").select_option("operator")
    expect(page.locator(".toast").last).to_contain_text(viewer)
    roles = {u["username"]: u["role"] for u in console.client("security_admin").get(
        "/v1/users", params={"limit": 1000}).json()["items"]}
    assert roles[viewer] == "operator"

    page.click("[data-tab=keys]")
    key_name = f"e2e-key-{admins['suffix']}"
    form = page.locator("[data-test=key-form]")
    form.locator("input[name=name]").fill(key_name)
    form.locator("textarea[name=routes]").fill("GET /v1/devices")
    form.locator("button[type=submit]").click()
    key = page.locator("[data-test=key-value]").inner_text().strip()
    with httpx.Client(base_url=console.url, timeout=10) as service:
        assert service.get("/v1/devices", headers={"X-API-Key": key}).status_code == 200
        revoke = page.locator(f"[data-test=keys] tr[data-key='{key_name}'] [data-test=key-revoke]")
        revoke.click()
        revoke.click()  # the second click confirms
        expect(page.locator(f"[data-test=keys] tr[data-key='{key_name}']")).to_contain_text("已于")
        assert service.get("/v1/devices", headers={"X-API-Key": key}).status_code == 401

    name, password = console.users["dispatcher"]
    with psycopg.connect(database_url) as conn:  # the state ten failed logins leave
        conn.execute(
            "INSERT INTO auth_failures (subject, failures, window_start, last_failed_at,"
            " locked_until) VALUES (%s, 10, now(), now(), now() + interval '30 minutes')"
            " ON CONFLICT (subject) DO UPDATE SET locked_until = excluded.locked_until",
            (f"account:{name}",))
    token = {"username": name, "password": password}
    with httpx.Client(base_url=console.url, timeout=10) as person:
        assert person.post("/v1/auth/token", data=token).status_code == 429
        page.click("[data-tab=lockouts]")
        page.locator(f"[data-test=lockouts] tr[data-subject='account:{name}']"
                     " [data-test=unlock]").click()
        expect(page.locator(f"tr[data-subject='account:{name}']")).to_have_count(0)
        _no_raw_words(page)
        assert person.post("/v1/auth/token", data=token).status_code == 200
