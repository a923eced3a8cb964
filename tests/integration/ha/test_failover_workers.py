"""kill -9 of the primary's postgres while the cloud worker (`cityops worker`) and the notify
worker (`cityops notify worker`) run (issue #19 item 7): both processes are still there after
the failover and do their work again: a cloud job queued after it is taken (it fails at once
with a clear error: the test names a cloud that its clouds.yaml does not have, so no
OpenStack is needed, and taking the job is the point), and a critical alarm raised after it is
delivered to a local 企业微信 robot, once."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import procrastinate
import psycopg
import pytest

from cityops.settings import Settings
from cloud_control import jobs
from datafoundation.secrets import encrypt
from tests.component import notify_receivers as rx
from tests.conftest import Processes, settings_env
from tests.helpers import wait_for
from tests.integration.ha.conftest import HaFixture

STALLED_AFTER_S = 6


@pytest.fixture
def receiver():
    robot = rx.Receiver()
    yield robot
    robot.close()


def _subscribe(url: str, secret_key: str, robot_url: str, department: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO departments (id, name) VALUES (%s, '应急管理局')",
                     (department,))
        conn.execute("INSERT INTO profiles (id, protocol, category, body) VALUES"
                     " ('ha-meter', 'modbus', 'power', '{}') ON CONFLICT DO NOTHING")
        conn.execute("INSERT INTO rules (id, kind, severity, body) VALUES"
                     " (%s, 'threshold', 'critical', '{}')", (department,))
        channel = conn.execute(
            "INSERT INTO notification_channels (name, kind, config, secret, created_by)"
            " VALUES (%s, 'wecom', %s, %s, 'ha') RETURNING id",
            (department, psycopg.types.json.Jsonb({"url": robot_url}),
             encrypt(secret_key, {"key": rx.WECOM_KEY}))).fetchone()[0]
        conn.execute("INSERT INTO notification_subscriptions (name, channel_id, kinds,"
                     " departments, created_by) VALUES (%s, %s, '{critical_alarm}', %s, 'ha')",
                     (department, channel, [department]))


def _alarm(url: str, department: str, n: int) -> bool:
    """A critical alarm on a device of the department; False while the database is away."""
    device = f"{department}-{n}"
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
            conn.execute("INSERT INTO gateways (id) VALUES (%s)", (device,))
            conn.execute("INSERT INTO devices (id, gateway_id, profile_id, department_id)"
                         " VALUES (%s, %s, 'ha-meter', %s)", (device, device, department))
            conn.execute("INSERT INTO alarms (rule_id, device_id, severity, state, message,"
                         " first_seen_at) VALUES (%s, %s, 'critical', 'active', '泵站断电',"
                         " now())", (department, device))
    except psycopg.OperationalError:
        return False
    return True


def _submit(settings: Settings, project: str) -> str | None:
    """Queue a cloud job as the API does; None while the database is away."""
    async def go() -> str:
        app = jobs.build_app(settings)
        url = settings.database_url.get_secret_value()
        async with app.open_async(), await psycopg.AsyncConnection.connect(url) as conn:
            return await jobs.submit(app, conn, "project.ensure", {"name": project},
                                     "ha-ops", settings.cloud_name)
    try:
        return asyncio.run(go())
    except (psycopg.Error, procrastinate.exceptions.ConnectorException):
        return None


def _job(url: str, job_id: str) -> tuple | None:
    with psycopg.connect(url, connect_timeout=2) as conn:
        return conn.execute("SELECT state, detail FROM jobs WHERE id = %s AND state <> 'queued'"
                            " AND state <> 'running'", (job_id,)).fetchone()


def _delivered(url: str, department: str) -> list[str]:
    with psycopg.connect(url, connect_timeout=2) as conn:
        return [r[0] for r in conn.execute(
            "SELECT n.title FROM notification_deliveries d JOIN notifications n"
            " ON n.id = d.notification_id WHERE d.state = 'sent' AND n.department_id = %s"
            " ORDER BY n.title", (department,))]


def _started(ha_settings: Settings, tmp_path: Path) -> tuple[Settings, Processes]:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds: {}\n")
    settings = ha_settings.model_copy(update={
        "cloud_name": f"ha-{secrets.token_hex(3)}", "clouds_yaml": clouds,
        "job_stalled_after_s": STALLED_AFTER_S})
    procs = Processes(tmp_path, settings_env(settings))
    procs.start("cloud-worker", "worker")
    procs.start("notify-worker", "notify", "worker", "--interval-s", "0.2")
    return settings, procs


def test_the_cloud_and_notify_workers_live_through_a_kill_9_of_the_primary(
    ha: HaFixture, ha_settings: Settings, receiver: rx.Receiver, tmp_path: Path
) -> None:
    url, cluster = ha.url, ha.cluster
    cluster.wait_synchronous(60)  # another test may have failed over just before
    department = f"ha-{secrets.token_hex(3)}"
    _subscribe(url, ha_settings.secret_key.get_secret_value(), receiver.url("/wecom/ha"),
               department)
    settings, procs = _started(ha_settings, tmp_path)
    try:
        # both at work before the kill (this also loads openstacksdk in the worker)
        assert _alarm(url, department, 1)
        before = _submit(settings, "ha-before")
        wait_for(lambda: _job(url, before), timeout_s=30, what="a cloud job taken")
        wait_for(lambda: len(_delivered(url, department)) == 1, timeout_s=20,
                 what="the first alarm delivered")
        old = cluster.leader()["name"]
        killed_at = time.monotonic()
        cluster.kill_postgres(old)
        wait_for(lambda: _alarm(url, department, 2), timeout_s=30, interval_s=0.2,
                 what="the database writable again")
        after = wait_for(lambda: _submit(settings, "ha-after"), timeout_s=10, interval_s=0.2,
                         what="a cloud job queued after the failover")
        writable_s = time.monotonic() - killed_at
        state, detail = wait_for(lambda: _job(url, after), timeout_s=20, interval_s=0.2,
                                 what="the cloud job taken after the failover")
        job_s = time.monotonic() - killed_at
        wait_for(lambda: len(_delivered(url, department)) == 2, timeout_s=20, interval_s=0.2,
                 what="the alarm raised after the failover delivered")
        sent_s = time.monotonic() - killed_at
        print(f"\nworkers: database writable {writable_s:.1f} s after the kill, a new cloud job"
              f" taken at {job_s:.1f} s, a new alarm delivered at {sent_s:.1f} s")
        assert (cluster.leader() or {"name": old})["name"] != old, "the standby was promoted"
        assert [name for name, proc in procs.procs if proc.poll() is not None] == []
        assert state == "failed" and f"Cloud {settings.cloud_name} was not found" in detail
        posted = [b["text"]["content"] for p, _, b, ok in receiver.requests
                  if p == "/wecom/ha" and ok]
        assert [sum(f"{department}-{n}" in text for text in posted) for n in (1, 2)] == [1, 1], \
            f"each alarm once: {posted}"
        assert "starting again" in procs.log("cloud-worker")
        assert "database unavailable" in procs.log("notify-worker")
        assert sent_s < 30 and job_s < 30
    finally:
        procs.stop_all()
