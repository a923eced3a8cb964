"""Notifications end to end on real PostgreSQL: channels and subscriptions made through the API
(secrets never read back), sources found in the platform's own tables (a critical alarm, an
event dispatched), delivered by the worker's pass to a real SMTP server (aiosmtpd) and to local
receivers that check each robot's format and signature; a failing SMS gateway retried with its
answers logged; a robot refusing a wrong signature; quiet hours; escalation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta

import httpx
import psycopg
import pytest

from cityevents.calendar import COUNTY_TZ, WorkCalendar
from cityops.principal import Role
from notifications.fanout import quiet_until
from notifications.worker import Policy, run_once
from tests.component import notify_receivers as rx
from tests.component.test_events_kit import Api, api_client, unique
from tests.helpers import wait_for

POLICY = Policy(escalate_after=timedelta(minutes=15), backoff=timedelta(seconds=30),
                max_attempts=2)


@pytest.fixture(scope="module")
def env(settings):
    receiver = rx.Receiver(sms_failures=1)
    smtp, box = rx.smtp_server()
    with api_client(settings, datetime.now(UTC)) as api:
        api.dept, api.other = api.department(unique("nt-a")), api.department(unique("nt-b"))
        api.person("nt-admin", Role.ADMIN)
        api.person("nt-op", Role.OPERATOR)
        api.person("nt-staff-b", Role.DEPARTMENT_STAFF, api.other)
        api.receiver, api.box, api.smtp_port = receiver, box, smtp.port
        yield api
    smtp.stop()
    receiver.close()


def _pass(api: Api, now: datetime) -> dict:
    async def go() -> dict:
        async with await psycopg.AsyncConnection.connect(api.url, autocommit=True) as conn, \
                httpx.AsyncClient(timeout=5, trust_env=False) as client:
            return await run_once(conn, api.settings.secret_key.get_secret_value(),
                                  WorkCalendar(), now, POLICY, client)
    return asyncio.run(go())


def _channel(api: Api, name: str, kind: str, config: dict, secret: dict) -> int:
    return api.ok("nt-admin", "POST", "/v1/notification-channels", 201, json={
        "name": unique(name), "kind": kind, "config": config, "secret": secret})["id"]


def _subscribe(api: Api, channel: int, kinds: list[str], **extra) -> int:
    return api.ok("nt-admin", "POST", "/v1/subscriptions", 201, json={
        "name": unique("sub"), "channel_id": channel, "kinds": kinds,
        "departments": [api.dept], **extra})["id"]


def _critical_alarm(api: Api, age: timedelta = timedelta(0), state: str = "active") -> int:
    ids = {k: unique(k) for k in ("gw", "dev", "rule")}
    with psycopg.connect(api.url, autocommit=True) as conn:
        conn.execute("INSERT INTO gateways (id) VALUES (%s)", (ids["gw"],))
        conn.execute("INSERT INTO profiles (id, protocol, category, body) VALUES"
                     " ('nt-meter', 'modbus', 'power', '{}') ON CONFLICT DO NOTHING")
        conn.execute("INSERT INTO devices (id, gateway_id, profile_id, department_id)"
                     " VALUES (%s, %s, 'nt-meter', %s)", (ids["dev"], ids["gw"], api.dept))
        conn.execute("INSERT INTO rules (id, kind, severity, body) VALUES"
                     " (%s, 'threshold', 'critical', '{}')", (ids["rule"],))
        return conn.execute(
            "INSERT INTO alarms (rule_id, device_id, severity, state, message, first_seen_at)"
            " VALUES (%s, %s, 'critical', %s, '水压过低', now() - %s) RETURNING id",
            (ids["rule"], ids["dev"], state, age)).fetchone()[0]


def _dispatch(api: Api) -> int:
    with psycopg.connect(api.url, autocommit=True) as conn:
        event = conn.execute(
            "INSERT INTO events (channel, reporter, category_code, urgency, description,"
            " address, state, department_id, reported_at) VALUES ('hotline', 'nt', 'F01.01',"
            " 'normal', '井盖缺失', '濉溪路 1 号', 'dispatched', %s, now()) RETURNING id",
            (api.dept,)).fetchone()[0]
        conn.execute("INSERT INTO event_transitions (event_id, action, from_state, to_state,"
                     " actor, actor_role, at, department_id) VALUES (%s, 'dispatch',"
                     " 'registered', 'dispatched', 'nt', 'dispatcher', now(), %s)",
                     (event, api.dept))
    return event


def _mine(api: Api, sub: int) -> list[dict]:
    return [d for d in api.ok("nt-admin", "GET", "/v1/deliveries", params={"limit": 500})
            if d["subscription_id"] == sub]


def test_every_channel_delivers_and_a_failing_gateway_is_retried(env: Api) -> None:
    api, r = env, env.receiver
    channels = {
        "email": _channel(api, "mail", "email", {"host": "127.0.0.1", "port": api.smtp_port,
                                                 "sender": "cityops@suixi.test"}, {}),
        "wecom": _channel(api, "wx", "wecom", {"url": r.url("/wecom/send")},
                          {"key": rx.WECOM_KEY}),
        "dingtalk": _channel(api, "dd", "dingtalk", {"url": r.url("/dingtalk/send")},
                             {"access_token": rx.DING_TOKEN, "secret": rx.DING_SECRET}),
        "feishu": _channel(api, "fs", "feishu", {"url": r.url("/feishu/hook")},
                           {"token": rx.FEISHU_TOKEN, "secret": rx.FEISHU_SECRET}),
        "sms": _channel(api, "sms", "sms", {
            "url": r.url("/sms"), "phones_field": "mobiles", "text_field": "content",
            "extra": {"sign": "濉溪城运"}, "ok_field": "code", "ok_value": "OK"},
            {"token": rx.SMS_TOKEN}),
        "bad-sign": _channel(api, "dd-bad", "dingtalk", {"url": r.url("/dingtalk/send")},
                             {"access_token": rx.DING_TOKEN, "secret": "SECwrong"}),
    }
    listed = api.get("nt-admin", "/v1/notification-channels").text
    assert rx.DING_SECRET not in listed and rx.SMS_TOKEN not in listed
    subs = {k: _subscribe(api, c, ["critical_alarm", "event_dispatched"],
                          recipients=["duty@suixi.test"] if k == "email" else ["13800000000"])
            for k, c in channels.items()}
    alarm, event = _critical_alarm(api), _dispatch(api)
    now = datetime.now(UTC)
    _pass(api, now)

    titles = {m["Subject"] for _, m in api.box.messages}
    assert f"[CityOps] 案件派遣 #{event} 公用设施/井盖" in titles
    assert any(s.startswith("[CityOps] 严重告警 ") for s in titles)
    assert all(to == ["duty@suixi.test"] for to, _ in api.box.messages)
    for kind in ("email", "wecom", "dingtalk", "feishu"):
        got = _mine(api, subs[kind])
        assert [d["state"] for d in got] == ["sent", "sent"], (kind, got)
    assert '"errcode": 0' in _mine(api, subs["dingtalk"])[0]["last_answer"]
    sms = _mine(api, subs["sms"])
    assert sorted(d["state"] for d in sms) == ["pending", "sent"]
    failed = next(d for d in sms if d["state"] == "pending")
    assert failed["last_status"] == 500 and "gateway busy" in failed["last_answer"]
    bad = _mine(api, subs["bad-sign"])
    assert {d["state"] for d in bad} == {"pending"} and "310000" in bad[0]["last_answer"]

    _pass(api, now + timedelta(seconds=10))  # the backoff has not passed: nothing resent
    assert _mine(api, subs["sms"]) == sms
    _pass(api, now + timedelta(seconds=31))
    retried = next(d for d in _mine(api, subs["sms"]) if d["id"] == failed["id"])
    assert retried["state"] == "sent" and retried["attempts"] == 2
    assert [e["status"] for e in retried["log"]] == [500, 200]
    assert {d["state"] for d in _mine(api, subs["bad-sign"])} == {"failed"}  # max_attempts 2
    sms_bodies = [b for p, _, b, ok in r.requests if p == "/sms" and ok]
    assert sms_bodies and sms_bodies[0]["sign"] == "濉溪城运"
    assert sms_bodies[0]["mobiles"] == ["13800000000"]

    _pass(api, now + timedelta(seconds=40))  # a later pass finds nothing new to send
    assert len(_mine(api, subs["wecom"])) == 2
    # the log is kept to the caller's departments
    other = api.ok("nt-staff-b", "GET", "/v1/deliveries")
    assert other is not None and not any(d["department_id"] == api.dept for d in other)
    assert alarm


def test_quiet_hours_hold_the_non_critical_and_escalation_follows_an_unacknowledged_alarm(
        env: Api) -> None:
    api = env
    channel = _channel(api, "wx-q", "wecom", {"url": api.receiver.url("/wecom/q")},
                       {"key": rx.WECOM_KEY})
    now = datetime.now(UTC)
    local = now.astimezone(COUNTY_TZ)
    start, end = (local - timedelta(hours=1)).time(), (local + timedelta(hours=1)).time()
    sub = _subscribe(api, channel, ["event_dispatched", "critical_alarm",
                                    "alarm_unacknowledged"],
                     quiet_start=start.isoformat(), quiet_end=end.isoformat())
    _dispatch(api)
    old = _critical_alarm(api, age=timedelta(minutes=20))
    _critical_alarm(api, age=timedelta(minutes=20), state="acknowledged")
    _pass(api, now)
    got = {d["kind"]: d for d in _mine(api, sub)}
    assert got["event_dispatched"]["state"] == "pending" and got["event_dispatched"]["held"]
    assert got["critical_alarm"]["state"] == "sent"  # critical: never held
    # escalated once: only the alarm still unacknowledged after 15 minutes
    escalated = [d for d in _mine(api, sub) if d["kind"] == "alarm_unacknowledged"]
    assert len(escalated) == 1 and escalated[0]["state"] == "sent"
    assert escalated[0]["title"].startswith("严重告警未确认（升级）")
    assert old
    _pass(api, now + timedelta(minutes=59))
    assert {d["kind"]: d for d in _mine(api, sub)}["event_dispatched"]["state"] == "pending"
    _pass(api, now + timedelta(hours=1, seconds=1))
    assert {d["kind"]: d for d in _mine(api, sub)}["event_dispatched"]["state"] == "sent"


def test_quiet_periods_wrap_midnight() -> None:
    at = datetime(2026, 12, 3, 23, 30, tzinfo=COUNTY_TZ)
    until = quiet_until(at, time(22, 0), time(7, 0))
    assert until == datetime(2026, 12, 4, 7, 0, tzinfo=COUNTY_TZ)
    assert quiet_until(at.replace(hour=6), time(22, 0), time(7, 0)) == at.replace(hour=7,
                                                                                   minute=0)
    assert quiet_until(at.replace(hour=12), time(22, 0), time(7, 0)) is None


def test_bad_channels_and_subscriptions_are_refused_naming_the_field(env: Api) -> None:
    api = env
    answer = api.call("nt-admin", "POST", "/v1/notification-channels", json={
        "name": unique("dd"), "kind": "dingtalk", "config": {}, "secret": {"access_token": "t"}})
    assert answer.status_code == 422 and "secret.secret" in answer.json()["detail"]
    answer = api.call("nt-admin", "POST", "/v1/notification-channels", json={
        "name": unique("sms"), "kind": "sms", "config": {"url": "http://x", "bogus": 1}})
    assert answer.status_code == 422 and "config.bogus" in answer.json()["detail"]
    answer = api.call("nt-admin", "POST", "/v1/notification-channels", json={
        "name": unique("wx"), "kind": "wecom", "config": {"url": "file:///etc/passwd"},
        "secret": {"key": "k"}})
    assert answer.status_code == 422 and "config.url" in answer.json()["detail"]
    answer = api.call("nt-op", "POST", "/v1/notification-channels", json={
        "name": "x", "kind": "wecom", "secret": {"key": "k"}})
    assert answer.status_code == 403
    channel = _channel(api, "wx-b", "wecom", {}, {"key": "k"})
    answer = api.call("nt-admin", "POST", "/v1/subscriptions", json={
        "name": "s", "channel_id": channel, "kinds": ["nonsense"]})
    assert answer.status_code == 422 and "kinds" in answer.json()["detail"]
    assert api.ok("nt-op", "GET", "/v1/subscriptions") is not None
    with psycopg.connect(api.url) as conn:
        stored = conn.execute("SELECT secret FROM notification_channels WHERE id = %s",
                              (channel,)).fetchone()[0]
    assert b'"key"' not in bytes(stored)


def _open_event(api: Api, deadline_in: timedelta, limit: timedelta) -> int:
    with psycopg.connect(api.url, autocommit=True) as conn:
        return conn.execute(
            "INSERT INTO events (channel, reporter, category_code, urgency, description, state,"
            " department_id, reported_at, step, step_unit, step_limit_s, step_started_at,"
            " step_deadline_at) VALUES ('hotline', 'nt', 'F01.02', 'normal', '路灯不亮',"
            " 'dispatched', %s, now(), 'dispose', 'hours', %s, now(), now() + %s)"
            " RETURNING id", (api.dept, limit.total_seconds(), deadline_in)).fetchone()[0]


def test_lights_turning_yellow_and_red_are_announced_once(env: Api) -> None:
    api = env
    channel = _channel(api, "wx-l", "wecom", {"url": api.receiver.url("/wecom/l")},
                       {"key": rx.WECOM_KEY})
    sub = _subscribe(api, channel, ["event_light_yellow", "event_light_red"], role="dispatcher")
    yellow = _open_event(api, timedelta(minutes=10), timedelta(hours=1))  # 83 % used
    _open_event(api, timedelta(minutes=50), timedelta(hours=1))  # 17 %: green, nothing
    red = _open_event(api, -timedelta(minutes=5), timedelta(hours=1))
    with psycopg.connect(api.url, autocommit=True) as conn:  # what the sweep writes
        conn.execute("INSERT INTO event_transitions (event_id, action, from_state, to_state,"
                     " actor, actor_role, at, department_id) VALUES (%s, 'supervise',"
                     " 'dispatched', 'dispatched', 'system', 'admin', now(), %s)",
                     (red, api.dept))
    now = datetime.now(UTC)
    _pass(api, now)
    _pass(api, now + timedelta(seconds=1))
    got = sorted((d["kind"], d["title"], d["state"]) for d in _mine(api, sub))
    assert got == [("event_light_red", f"案件超时（红灯）#{red}", "sent"),
                   ("event_light_yellow", f"案件即将超时（黄灯）#{yellow}", "sent")]
    posted = [b["text"]["content"] for p, _, b, ok in api.receiver.requests if p == "/wecom/l"]
    assert len(posted) == 2 and all(ok for p, _, _, ok in api.receiver.requests
                                    if p == "/wecom/l")


def test_the_worker_process_delivers(env: Api, processes) -> None:
    api = env
    channel = _channel(api, "wx-p", "wecom", {"url": api.receiver.url("/wecom/p")},
                       {"key": rx.WECOM_KEY})
    sub = _subscribe(api, channel, ["critical_alarm"])
    _critical_alarm(api)
    processes.start("notify", "notify", "worker", "--interval-s", "0.2")
    delivered = wait_for(lambda: [d for d in _mine(api, sub) if d["state"] == "sent"],
                         timeout_s=30)
    assert delivered[0]["last_answer"] == '{"errcode": 0, "errmsg": "ok"}'


def test_a_test_message_answers_with_what_the_provider_said(env: Api) -> None:
    api, r = env, env.receiver
    good = _channel(api, "dd-t", "dingtalk", {"url": r.url("/dingtalk/t")},
                    {"access_token": rx.DING_TOKEN, "secret": rx.DING_SECRET})
    bad = _channel(api, "dd-tb", "dingtalk", {"url": r.url("/dingtalk/t")},
                   {"access_token": rx.DING_TOKEN, "secret": "SECwrong"})
    answer = api.ok("nt-admin", "POST", f"/v1/notification-channels/{good}/test", json={})
    assert answer["ok"] and answer["status"] == 200 and '"errcode": 0' in answer["answer"]
    answer = api.ok("nt-admin", "POST", f"/v1/notification-channels/{bad}/test", json={})
    assert not answer["ok"] and "310000" in answer["answer"]
    assert api.call("nt-op", "POST", f"/v1/notification-channels/{good}/test",
                    json={}).status_code == 403
    assert api.call("nt-admin", "POST", "/v1/notification-channels/999999/test",
                    json={}).status_code == 404


def test_a_data_request_waiting_reaches_the_providing_department(env: Api) -> None:
    api = env
    code = f"5.01.001-{unique('r')}"
    with psycopg.connect(api.url, autocommit=True) as conn:
        conn.execute("INSERT INTO resources (code, classification, name, provider_id, format,"
                     " sharing_type, sharing_conditions, update_cycle, published_on, created_by)"
                     " VALUES (%s, '5.01.001', '供水管网', %s, 'table', 'conditional', '应急',"
                     " 'daily', current_date, 'nt')",
                     (code, api.dept))
        conn.execute("INSERT INTO access_requests (resource_code, applicant, application,"
                     " purpose, days, state, submitted_at, check_due_at, checked_at,"
                     " check_result) VALUES (%s, 'zhang', 'app', '应急调度', 30,"
                     " 'with_provider', now(), now(), now(), 'ok')", (code,))
    channel = _channel(api, "wx-d", "wecom", {"url": api.receiver.url("/wecom/d")},
                       {"key": rx.WECOM_KEY})
    sub = _subscribe(api, channel, ["data_request"], role="data_admin")
    _pass(api, datetime.now(UTC))
    got = _mine(api, sub)
    assert [(d["title"], d["state"]) for d in got] == [(f"数据申请待审核 {code}", "sent")]


def test_an_open_quality_task_reaches_its_department_once(env: Api) -> None:
    api = env
    dataset = f"raw_nt.t_{unique('q').replace('-', '_')}"
    with psycopg.connect(api.url, autocommit=True) as conn:
        conn.execute("INSERT INTO datasets (id, name, layer, department_id) VALUES"
                     " (%s, '测试表', 'raw', %s)", (dataset, api.dept))
        run = conn.execute("INSERT INTO quality.runs (dataset_id, trigger) VALUES"
                           " (%s, 'manual') RETURNING id", (dataset,)).fetchone()[0]
        conn.execute("INSERT INTO quality.tasks (dataset_id, rule, department_id, failed,"
                     " due_at, opened_run_id, last_run_id) VALUES (%s, 'not_null:uscc', %s,"
                     " 12, now() + interval '5 days', %s, %s)", (dataset, api.dept, run, run))
    channel = _channel(api, "wx-q2", "wecom", {"url": api.receiver.url("/wecom/q2")},
                       {"key": rx.WECOM_KEY})
    sub = _subscribe(api, channel, ["quality_task"], min_severity="minor")
    now = datetime.now(UTC)
    _pass(api, now)
    _pass(api, now + timedelta(seconds=1))
    got = _mine(api, sub)
    assert [(d["title"], d["state"]) for d in got] == [(f"数据质量整改 {dataset}", "sent")]
    bodies = [b for p, _, b, _ in api.receiver.requests if p == "/wecom/q2"]
    assert "not_null:uscc：12 条不合格" in bodies[0]["text"]["content"]


def test_a_generated_report_reaches_its_subscribers(env: Api) -> None:
    api = env
    title = f"濉溪县城市运行周分析报告（{unique('nt')}）"
    with psycopg.connect(api.url, autocommit=True) as conn:
        report = conn.execute(
            "INSERT INTO reports (kind, period_start, period_end, title, pdf, docx, xlsx,"
            " created_by) VALUES ('weekly', now() - interval '300 weeks' * random(), now(),"
            " %s, '', '', '', 'test') RETURNING id", (title,)).fetchone()[0]
    channel = _channel(api, "wx-r", "wecom", {"url": api.receiver.url("/wecom/r")},
                       {"key": rx.WECOM_KEY})
    sub = _subscribe(api, channel, ["report_ready"], min_severity="minor", departments=None)
    _pass(api, datetime.now(UTC))
    got = [d for d in _mine(api, sub) if d["title"] == title]
    assert [d["state"] for d in got] == ["sent"]
    bodies = [b for p, _, b, _ in api.receiver.requests if p == "/wecom/r"]
    assert any(f"/v1/reports/{report}/pdf" in b["text"]["content"] for b in bodies)
