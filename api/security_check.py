"""`cityops security check`: the running platform against a 等保 2.0 level-3 checklist
(GB/T 22239-2019, the items a platform's own configuration answers; docs/security.md).

Each item names the requirement, what was checked and the evidence found, and passes or
fails. The database is read as the platform's own role; the API is asked over HTTP(S) at
`--url` for the headers it really sends. Host items (pam, auditd, SSH, nftables, time sync)
are the hardening playbook's (playbooks/hardening.yml), not checked here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Annotated

import httpx
import psycopg
import typer

from cityops.settings import Settings

app = typer.Typer(help="等保 level-3 checks of the running platform.", no_args_is_help=True)
ADMIN_ROLES = ("admin", "security_admin", "audit_admin")


@dataclass(frozen=True)
class Item:
    id: str
    requirement: str
    checked: str
    passed: bool
    evidence: str


def _settings_items(s: Settings) -> list[Item]:
    return [
        Item("8.1.4.1-a", "身份鉴别: 口令复杂度 (password complexity)",
             "password_min_length >= 8 and password_min_classes >= 3",
             s.password_min_length >= 8 and s.password_min_classes >= 3,
             f"min length {s.password_min_length}, classes {s.password_min_classes},"
             f" history {s.password_history}"),
        Item("8.1.4.1-b", "身份鉴别: 定期更换 (passwords expire)",
             "0 < password_max_age_days <= 90", 0 < s.password_max_age_days <= 90,
             f"max age {s.password_max_age_days} days, warning {s.password_warn_days} days"),
        Item("8.1.4.1-c", "身份鉴别: 登录失败处理 (lockout after failures)",
             "auth_failures_per_account <= 10 and auth_lockout_s >= 600",
             s.auth_failures_per_account <= 10 and s.auth_lockout_s >= 600,
             f"{s.auth_failures_per_account} failures per {s.auth_failure_window_s} s lock"
             f" for {s.auth_lockout_s} s; per address {s.auth_failures_per_address}"),
        Item("8.1.4.1-d", "身份鉴别: 登录连接超时自动退出 (session idle timeout)",
             "session_idle_timeout_s <= 1800", s.session_idle_timeout_s <= 1800,
             f"idle {s.session_idle_timeout_s} s, session at most {s.session_max_s} s,"
             f" access token {s.jwt_ttl_s} s"),
        Item("8.1.4.1-e", "身份鉴别: 双因素 for administrators",
             "totp_required_roles includes admin, security_admin, audit_admin",
             set(ADMIN_ROLES) <= set(s.totp_required_roles),
             f"required for {sorted(s.totp_required_roles)}"),
        Item("8.1.4.3-d", "安全审计: 保存 >= 180 天 (audit retention)",
             "audit_retention_days >= 180", s.audit_retention_days >= 180,
             f"{s.audit_retention_days} days"),
        _broker_item(s),
        Item("8.1.4.7-a", "数据保密性: keys strong enough",
             "JWT secret >= 32 characters; CITYOPS_SECRET_KEY set (credentials at rest)",
             len(s.jwt_secret.get_secret_value()) >= 32 and bool(s.secret_key.get_secret_value()),
             f"JWT secret {len(s.jwt_secret.get_secret_value())} characters; secret key"
             f" {'set' if s.secret_key.get_secret_value() else 'NOT set'}"),
    ]


def _broker_item(s: Settings) -> Item:
    """The services' MQTT (docs/operations.md, "Encryption in transit"); the URL is shown
    by scheme, host and port only."""
    from urllib.parse import urlsplit

    from cityops.tls import service_identity

    url = urlsplit(s.mqtt_url)
    identities = {svc: (service_identity(s, svc)[0][1] or "password") for svc in ("ingest", "api")}
    return Item("8.1.3.1-c", "通信传输: services to the broker encrypted",
                "CITYOPS_MQTT_URL is mqtts:// (the broker verified against"
                " CITYOPS_MQTT_CA_FILE or the system's CAs)", url.scheme == "mqtts",
                f"{url.scheme}://{url.hostname}:{url.port}; CA {s.mqtt_ca_file or 'system'};"
                f" ingest {identities['ingest']}; api {identities['api']}")


def _one(conn: psycopg.Connection, sql: str, params: tuple = ()) -> tuple:
    return conn.execute(sql, params).fetchone() or ()


def _database_items(conn: psycopg.Connection, s: Settings) -> list[Item]:
    from api.audit_chain import verify

    no_totp = [r[0] for r in conn.execute(
        "SELECT username FROM users u WHERE NOT disabled AND role = ANY(%s) AND NOT EXISTS"
        " (SELECT 1 FROM user_totp t WHERE t.username = u.username"
        "  AND t.confirmed_at IS NOT NULL) ORDER BY username", (list(ADMIN_ROLES),))]
    holders = dict(conn.execute("SELECT role, count(*) FROM users WHERE NOT disabled AND"
                                " role = ANY(%s) GROUP BY role", (list(ADMIN_ROLES),)).fetchall())
    rights = _one(conn, "SELECT has_table_privilege('audit_log', 'UPDATE'),"
                        " has_table_privilege('audit_log', 'DELETE'),"
                        " has_table_privilege('audit_log', 'TRUNCATE'),"
                        " (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass"
                        "  AND tgname IN ('audit_append_only', 'audit_no_truncate',"
                        "  'audit_chain_append') AND tgenabled <> 'D')")
    verdict = verify(s.database_url.get_secret_value())
    tls = _one(conn, "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    keys = _one(conn, "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL"
                      " AND expires_at > now() AND role = 'admin'")[0]
    return [
        Item("8.1.4.1-e2", "身份鉴别: 双因素 enrolled", "every enabled administrator has a"
             " confirmed TOTP", not no_totp, f"without: {no_totp[:10] or 'none'}"),
        Item("8.1.4.2-d", "访问控制: 三员分立 (separation of duties)", "at least one enabled"
             " system, security and audit administrator", all(holders.get(r) for r in
                                                              ADMIN_ROLES),
             ", ".join(f"{r}: {holders.get(r, 0)}" for r in ADMIN_ROLES)),
        Item("8.1.4.2-c", "访问控制: 最小权限 (no admin API keys)", "active API keys of role"
             " admin", keys == 0, f"{keys} active admin keys"),
        Item("8.1.4.3-c", "安全审计: 记录不可删改 (append-only audit)", "the platform role lacks"
             " UPDATE/DELETE/TRUNCATE on audit_log; its three triggers enabled",
             rights[:3] == (False, False, False) and rights[3] == 3,
             f"UPDATE {rights[0]}, DELETE {rights[1]}, TRUNCATE {rights[2]}, triggers"
             f" enabled {rights[3]}/3"),
        Item("8.1.4.3-c2", "安全审计: 完整性 (hash chain)", "cityops audit verify",
             verdict.ok, verdict.detail),
        Item("8.1.3.1-a", "通信传输: database connection encrypted", "pg_stat_ssl of this"
             " connection", bool(tls and tls[0]), f"ssl {tls[0] if tls else None}"
             f" {tls[1] if tls and tls[1] else ''}".strip()),
    ]


def _api_items(client: httpx.Client, url: str) -> list[Item]:
    try:
        res = client.get(f"{url.rstrip('/')}/v1/health")
    except httpx.HTTPError as err:
        return [Item("8.1.4.4", "入侵防范: API reachable for checking", f"GET {url}/v1/health",
                     False, f"{type(err).__name__}: {err}")]
    h = res.headers
    csp = h.get("content-security-policy", "")
    https = url.startswith("https://")
    return [
        Item("8.1.4.4-a", "入侵防范: security headers", "CSP (script-src 'self', frame-ancestors"
             " 'none'), X-Frame-Options, Referrer-Policy, Permissions-Policy",
             "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
             and h.get("x-frame-options") == "DENY" and "referrer-policy" in h
             and "permissions-policy" in h, f"CSP: {csp[:80]}…; X-Frame-Options:"
             f" {h.get('x-frame-options')}"),
        Item("8.1.3.1-b", "通信传输: HTTPS with HSTS", f"{url} is https and sends HSTS",
             https and "strict-transport-security" in h,
             f"scheme {'https' if https else 'http'};"
             f" HSTS {h.get('strict-transport-security', 'absent')}"),
    ]


def run_checks(settings: Settings, url: str, client: httpx.Client | None = None) -> list[Item]:
    items = _settings_items(settings)
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        items += _database_items(conn, settings)
    own = client is None
    client = client or httpx.Client(timeout=10, verify=True)
    try:
        items += _api_items(client, url)
    finally:
        if own:
            client.close()
    return items


def _print(items: list[Item], echo: Callable[[str], None]) -> None:
    for item in items:
        echo(f"[{'PASS' if item.passed else 'FAIL'}] {item.id} {item.requirement}\n"
             f"       checked: {item.checked}\n       evidence: {item.evidence}")
    failed = sum(not i.passed for i in items)
    echo(f"{len(items) - failed} passed, {failed} failed of {len(items)}")


@app.command("check")
def check(
    url: Annotated[str | None, typer.Option(help="the API as clients reach it (default"
                                                  " http(s)://<api_host>:<api_port>)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document")] = False,
) -> None:
    """Check each item; exit 1 when any fails."""
    from cityops.settings import load_settings
    from cityops.tls import api_base_url, api_client_context

    settings = load_settings()
    # the API's certificate verified against the local CA (or the system's CAs), never skipped
    with httpx.Client(timeout=10, verify=api_client_context(settings)) as client:
        items = run_checks(settings, url or api_base_url(settings), client)
    if as_json:
        typer.echo(json.dumps([asdict(i) for i in items], ensure_ascii=False, indent=1))
    else:
        _print(items, typer.echo)
    if not all(i.passed for i in items):
        raise typer.Exit(1)
