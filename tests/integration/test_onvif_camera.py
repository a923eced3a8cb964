"""A camera end to end, every hop a real process: the ONVIF camera simulator -> agent
(ONVIF driver) -> Mosquitto -> ingest (readings, the video rules' alarms) -> TimescaleDB ->
API; a PTZ preset and a snapshot through the API's command path, audited; the map's camera
linked to the device; the camera put on a video-wall window by name (a Modbus matrix)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
import yaml

from tests.conftest import BrokerFixture, Processes
from tests.helpers import free_port, port_open, wait_for

RULES = Path(__file__).parents[2] / "ingestion" / "rules" / "examples" / "video.yaml"
PASSWORDS = {"v20-admin": "correct-horse-20", "v20-operator": "operator-horse-20",
             "v20-viewer": "viewer-horse-20"}


def _login(base: str, user: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    token = client.post("/v1/auth/token", data={"username": user,
                                                 "password": PASSWORDS[user]}).json()
    client.headers["Authorization"] = f"Bearer {token['access_token']}"
    return client


@pytest.fixture
def video(processes: Processes, broker: BrokerFixture, tmp_path: Path, database_url: str):
    gateway = f"gw-{uuid.uuid4().hex[:6]}"
    cam_port, matrix_port, api_port = free_port(), free_port(), free_port()
    config = {
        "gateway": gateway, "broker": {"url": broker.url},
        "queue": {"path": str(tmp_path / "queue.db"), "batch_max_wait_ms": 100},
        "devices": [
            {"id": f"{gateway}-cam", "profile": "security/onvif_camera", "poll_interval_s": 1,
             "endpoint": {"protocol": "onvif", "host": "127.0.0.1", "port": cam_port,
                          "username": "admin", "password_env": "CAMERA_PASSWORD",
                          "pull_timeout_s": 1}},
            {"id": f"{gateway}-matrix", "profile": "av/matrix_switcher", "poll_interval_s": 0.5,
             "endpoint": {"host": "127.0.0.1", "port": matrix_port, "unit_id": 1}}],
    }
    (tmp_path / "gw.yaml").write_text(yaml.safe_dump(config))
    password = broker.add_gateway(gateway)
    processes.run("registry", "load", str(tmp_path / "gw.yaml"))
    processes.run("rules", "load", str(RULES))
    processes.run("users", "add", "v20-admin", "--role", "admin",
                  stdin=PASSWORDS["v20-admin"] + "\n")
    camera = f"cam-{gateway}"
    with psycopg.connect(database_url) as conn:  # the map's camera register (migration 084)
        conn.execute("INSERT INTO facilities (id, kind, name, code, longitude, latitude)"
                     " VALUES (%s, 'camera', %s, '34062100001320000001', 116.77, 33.72)",
                     (camera, f"县府路口东 {gateway}"))
    processes.start("camera", "sim", "onvif", "--port", str(cam_port), "--name", camera,
                    env=processes.env | {"CITYOPS_SIM_PASSWORD": "Cam-pass-20"})
    processes.start("matrix", "sim", "modbus", "--profile", "av/matrix_switcher",
                    "--port", str(matrix_port))
    wait_for(lambda: port_open(cam_port) and port_open(matrix_port), what="simulators")
    processes.start("agent", "agent", "--config", str(tmp_path / "gw.yaml"),
                    env=processes.env | {"CITYOPS_GATEWAY_PASSWORD": password,
                                         "CAMERA_PASSWORD": "Cam-pass-20"})
    processes.start("ingest", "ingest")
    processes.start("api", "api", "--port", str(api_port))
    wait_for(lambda: port_open(api_port), timeout_s=60, what="api")
    base = f"http://127.0.0.1:{api_port}"
    admin = _login(base, "v20-admin")
    for user in ("v20-operator", "v20-viewer"):  # through the API: no CLI start each
        made = admin.post("/v1/users", json={"username": user, "password": PASSWORDS[user],
                                             "role": user.removeprefix("v20-")})
        assert made.status_code == 201, made.text
    return {"gateway": gateway, "device": f"{gateway}-cam", "matrix": f"{gateway}-matrix",
            "camera": camera, "name": f"县府路口东 {gateway}", "cam_port": cam_port,
            "admin": admin, "operator": _login(base, "v20-operator"),
            "viewer": _login(base, "v20-viewer")}


def _status(client: httpx.Client, camera: str) -> dict:
    answer = client.get(f"/v1/cameras/{camera}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def _finished(client: httpx.Client, command: str) -> dict:
    return wait_for(lambda: (c := client.get(f"/v1/commands/{command}").json())["state"]
                    not in ("pending", "sent") and c, timeout_s=30, what=f"command {command}")


def _audited(database_url: str, action: str, target_like: str) -> list:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT actor, detail FROM audit_log WHERE action = %s"
                            " AND (target LIKE %s OR detail::text LIKE %s) ORDER BY id",
                            (action, target_like, target_like)).fetchall()


def test_camera_readings_alarm_preset_snapshot_and_wall(video: dict, database_url: str) -> None:
    admin, operator, device = video["admin"], video["operator"], video["device"]
    wrong = admin.put(f"/v1/cameras/{video['camera']}/device", json={"device": video["matrix"]})
    assert wrong.status_code == 422 and "speaks modbus, not ONVIF" in wrong.json()["detail"]
    assert admin.get("/v1/cameras/no-such-camera").status_code == 404
    unmapped = operator.post(f"/v1/walls/{video['matrix']}/windows/1/camera",
                             json={"camera": video["camera"]})
    assert unmapped.status_code == 422 and "is on no input" in unmapped.json()["detail"]
    linked = admin.put(f"/v1/cameras/{video['name']}/device", json={"device": device})
    assert linked.status_code == 200, linked.text
    assert linked.json()["id"] == video["camera"]

    # readings: agent -> Mosquitto -> TimescaleDB -> API
    status = wait_for(lambda: (s := _status(operator, video["camera"]))["points"].get("online")
                      and s["points"].get("motion") is not None and s, timeout_s=40,
                      what="the camera's first readings through the whole path")
    assert status["points"]["manufacturer"] == "CityOps"
    assert status["points"]["stream_uri"] == "rtsp://127.0.0.1:554/Streaming/main"
    assert status["state"] == "online" and status["points"]["motion"] is False

    # motion on the camera -> a reading -> the video rules' alarm
    httpx.post(f"http://127.0.0.1:{video['cam_port']}/_simulator/state", json={"motion": True})
    wait_for(lambda: _status(operator, video["camera"])["points"]["motion"] is True,
             timeout_s=20, what="motion through the whole path")
    with psycopg.connect(database_url) as conn:
        alarm = wait_for(lambda: conn.execute(
            "SELECT rule_id, state FROM alarms WHERE device_id = %s", (device,)).fetchone(),
            timeout_s=20, what="the motion alarm")
    assert alarm == ("camera-motion", "active")

    # a PTZ preset by name through the API's command path, audited
    sent = operator.post(f"/v1/devices/{device}/commands",
                         json={"method": "goto_preset", "args": {"preset": "square"}})
    assert sent.status_code == 202, sent.text
    done = _finished(operator, sent.json()["id"])
    assert (done["state"], done["readback"]) == ("succeeded", "2"), done
    rows = _audited(database_url, "POST /v1/devices/{device}/commands", f"%{device}%")
    assert any(r[0] == "v20-operator" and r[1].get("method") == "goto_preset" for r in rows)

    # a snapshot: taken through the agent, kept, served, its viewing audited
    taken = operator.post(f"/v1/cameras/{video['camera']}/snapshot")
    assert taken.status_code == 200, taken.text
    image = operator.get(taken.json()["url"])
    assert image.headers["content-type"] == "image/jpeg"
    assert image.content[:2] == b"\xff\xd8" and len(image.content) == taken.json()["bytes"]
    command = operator.get(f"/v1/commands/{taken.json()['command']}").json()
    assert command["readback"] == f"snapshot of {len(image.content)} bytes kept"
    assert _audited(database_url, "GET /v1/cameras/{camera}/snapshot", video["camera"])
    assert video["viewer"].get(taken.json()["url"]).status_code == 403
    assert _status(operator, video["camera"])["snapshot"]["bytes"] == len(image.content)

    # the wall: input 3 carries the camera; the operator puts it on window 2 by name
    mapped = admin.put(f"/v1/walls/{video['matrix']}/inputs/3", json={"camera": video["name"]})
    assert mapped.status_code == 200 and mapped.json()[0]["camera"] == video["camera"]
    put = operator.post(f"/v1/walls/{video['matrix']}/windows/2/camera",
                        json={"camera": video["name"]})
    assert put.status_code == 202, put.text
    assert (put.json()["point"], put.json()["value"]) == ("output_2_input", 3)
    assert _finished(operator, put.json()["id"])["state"] == "succeeded"
    refused = operator.post(f"/v1/walls/{video['matrix']}/windows/9/camera",
                            json={"camera": video["name"]})
    assert refused.status_code == 422 and "no window 9" in refused.json()["detail"]
