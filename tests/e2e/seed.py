"""What the console tests need besides the running devices: people of each role, city events
in several states (made through the API, as dispatchers and department staff would), and the
cloud figures a `cityops worker` sync would have written (no OpenStack in this folder)."""

from __future__ import annotations

import secrets
import uuid

import httpx
import psycopg

from tests.helpers import wait_for

DEPARTMENTS = {"urban-management": "城管局", "water-resources": "水利局",
               "emergency-management": "应急管理局"}


def _ok(response: httpx.Response, *statuses: int) -> dict:
    assert response.status_code in (statuses or (200, 201)), response.text
    return response.json() if response.content else {}


def users(admin: httpx.Client, suffix: str) -> dict[str, tuple[str, str]]:
    """One person per role (department staff belong to urban management)."""
    for dept, name in DEPARTMENTS.items():
        _ok(admin.post("/v1/departments", json={"id": dept, "name": name}), 201, 409)
    made = {}
    for role in ("operator", "viewer", "dispatcher", "department_staff", "ops_engineer"):
        name, password = f"{role.replace('_', '-')}-{suffix}", secrets.token_urlsafe(12)
        body = {"username": name, "password": password, "role": role}
        if role == "department_staff":
            body["department"] = "urban-management"
        _ok(admin.post("/v1/users", json=body), 201)
        made[role] = (name, password)
    return made


def wait_online(admin: httpx.Client, gateway: str, devices: list[str]) -> None:
    def online() -> bool:
        status = admin.get(f"/v1/gateways/{gateway}").json().get("last_status") or {}
        return all(status.get("devices", {}).get(d) == "online" for d in devices)

    wait_for(online, timeout_s=60, interval_s=0.3, what="every simulated device online")
    for device in devices:
        wait_for(lambda d=device: any(p["value"] is not None for p in
                                      admin.get(f"/v1/devices/{d}/latest").json()["points"]),
                 timeout_s=30, interval_s=0.3, what=f"first readings of {device}")


EVENTS = [  # (category, channel, urgency, address, description, steps)
    ("F01.01", "hotline", "normal", "濉溪镇淮海路与相山路交叉口", "井盖缺失，有行人踩空风险", []),
    ("E05.01", "sensor", "urgent", "南湖路下穿通道", "下穿通道积水约30厘米",
     [("verify", None), ("register", None), ("dispatch", "water-resources")]),
    ("E01.02", "inspector", "normal", "老城农贸市场东门", "垃圾堆放未清运",
     [("register", None), ("dispatch", "urban-management"), ("accept", "staff")]),
    ("E04.01", "citizen", "normal", "人民路步行街", "店外占道经营", [("register", None)]),
    ("F01.02", "inspector", "normal", "濉河公园北门", "路灯不亮三盏",
     [("register", None), ("dispatch", "urban-management"), ("accept", "staff"),
      ("feedback", "staff")]),
    ("E01.03", "hotline", "normal", "沱河路", "道路油污",
     [("register", None), ("dispatch", "urban-management"), ("accept", "staff"),
      ("feedback", "staff"), ("check", None), ("close", None)]),
]


def events(dispatcher: httpx.Client, staff: httpx.Client) -> list[int]:
    """The events above, each taken through its steps; their ids in the same order."""
    ids = []
    for code, channel, urgency, address, description, steps in EVENTS:
        created = _ok(dispatcher.post("/v1/events", json={
            "channel": channel, "category_code": code, "urgency": urgency, "address": address,
            "description": description, "external_ref": f"e2e-{uuid.uuid4().hex[:8]}"}), 201)
        for action, extra in steps:
            client = staff if extra == "staff" else dispatcher
            body = {"note": ""} if extra in (None, "staff") else {"department_id": extra}
            answer = client.post(f"/v1/events/{created['id']}/{action}", json=body)
            assert answer.status_code == 200, f"{action} of event {created['id']}: {answer.text}"
        ids.append(created["id"])
    return ids


CLOUD = "cityops-lab"  # the settings' default cloud_name: every cloud row names its cloud


def cloud(database_url: str) -> dict:
    """A sync's capacity and servers, a finished and a running job. Removed by remove_cloud():
    the database is the session's, and the cloud tests must not meet these rows."""
    servers = [(str(uuid.uuid4()), name, project, status) for name, project, status in (
        ("cgj-gis-01", "urban-management", "ACTIVE"),
        ("cgj-video-ai", "urban-management", "ACTIVE"),
        ("slj-flood-model", "water-resources", "ACTIVE"),
        ("yjj-edge-gw-03", "emergency-management", "ERROR"))]
    with psycopg.connect(database_url) as conn:
        at = conn.execute("SELECT now()").fetchone()[0]
        conn.cursor().executemany(
            "INSERT INTO cloud_capacity (time, scope, metric, used, lim) VALUES (%s, %s, %s,"
            " %s, %s)",
            [(at, *row) for row in (
                ("hypervisor", "vcpus", 58, 96), ("hypervisor", "ram_mb", 251_904, 393_216),
                ("hypervisor", "disk_gb", 3_100, 8_000), ("urban-management", "cores", 22, 40),
                ("water-resources", "cores", 17, 20), ("emergency-management", "cores", 6, 24))])
        conn.cursor().executemany(
            "INSERT INTO cloud_resources (cloud, kind, id, name, project, status)"
            " VALUES (%s, 'server', %s, %s, %s, %s)", [(CLOUD, *s) for s in servers])
        done = conn.execute(
            "INSERT INTO jobs (kind, params, state, progress, detail, requested_by, started_at,"
            " finished_at) VALUES ('server.ensure', '{}', 'succeeded', 100, 'server ACTIVE',"
            " 'ops', now() - interval '5 min', now() - interval '4 min') RETURNING id"
        ).fetchone()[0]
        running = conn.execute(
            "INSERT INTO jobs (kind, params, state, progress, detail, requested_by, started_at)"
            " VALUES ('playbook.run', '{}', 'running', 60, 'edge-gateway role', 'ops', now())"
            " RETURNING id").fetchone()[0]
        conn.execute("INSERT INTO job_events (job_id, message, host, task, status) VALUES"
                     " (%s, 'TASK [edge-gateway : install the agent] ok', 'yjj-edge-gw-03',"
                     " 'install the agent', 'ok')", (running,))
    return {"at": at, "servers": [s[0] for s in servers], "jobs": [done, running],
            "running": str(running)}


def finish_job(database_url: str, job: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO job_events (job_id, message, status) VALUES (%s, %s, 'ok')",
                     (job, "PLAY RECAP: 1 host ok"))
        conn.execute("UPDATE jobs SET state = 'succeeded', progress = 100, detail = 'done',"
                     " finished_at = now() WHERE id = %s", (job,))


def remove_cloud(database_url: str, seeded: dict) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM cloud_capacity WHERE time = %s", (seeded["at"],))
        conn.execute("DELETE FROM cloud_resources WHERE id = ANY(%s)", (seeded["servers"],))
        conn.execute("DELETE FROM jobs WHERE id = ANY(%s)", (seeded["jobs"],))
