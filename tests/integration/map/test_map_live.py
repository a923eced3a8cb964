"""What the big screen's map draws over its tiles: /v1/map/live (open alarms at their devices,
open events with their light, scoped as the tiles are), the `event` note migration 083 sends
on the live channel when an event is reported or changes, and who may follow events."""

from __future__ import annotations

import orjson
import psycopg
import pytest

from cityops.principal import Role
from tests.component.test_events_kit import Api, api_client, cst, unique

SPOT = (116.7421, 33.9013)


@pytest.fixture(scope="module")
def api(settings):
    with api_client(settings, cst(2026, 11, 16, 9, 0)) as api:
        api.dept = api.department(unique("live-a"))
        api.person("live-admin", Role.ADMIN)
        api.person("live-op", Role.OPERATOR)
        api.person("live-tech", Role.FIELD_TECHNICIAN)
        api.person("live-staff", Role.DEPARTMENT_STAFF, unique("live-b"))
        ids = api.ids = {k: unique(k) for k in ("gw", "dev", "rule")}
        with psycopg.connect(api.url, autocommit=True) as conn:
            conn.execute("INSERT INTO gateways (id) VALUES (%s)", (ids["gw"],))
            conn.execute("INSERT INTO profiles (id, protocol, category, body) VALUES"
                         " ('live-meter', 'modbus', 'power', '{}') ON CONFLICT DO NOTHING")
            conn.execute("INSERT INTO devices (id, gateway_id, profile_id, department_id,"
                         " longitude, latitude) VALUES (%s, %s, 'live-meter', %s, %s, %s)",
                         (ids["dev"], ids["gw"], api.dept, *SPOT))
            conn.execute("INSERT INTO rules (id, kind, severity, body) VALUES"
                         " (%s, 'threshold', 'critical', '{}')", (ids["rule"],))
            ids["alarm"] = conn.execute(
                "INSERT INTO alarms (rule_id, device_id, severity, state, message) VALUES"
                " (%s, %s, 'critical', 'active', 'pressure low') RETURNING id",
                (ids["rule"], ids["dev"])).fetchone()[0]
        yield api


def _by_id(collection: dict) -> dict:
    assert collection["type"] == "FeatureCollection"
    return {f["id"]: f for f in collection["features"]}


def test_open_alarms_at_their_devices_scoped_and_cleared_ones_gone(api: Api) -> None:
    alarm = api.ids["alarm"]
    found = _by_id(api.ok("live-admin", "GET", "/v1/map/live")["alarms"])[alarm]
    assert found["geometry"]["coordinates"] == pytest.approx(list(SPOT))
    assert (found["properties"]["severity"], found["properties"]["device"]) == (
        "critical", api.ids["dev"])
    one = api.ok("live-admin", "GET", "/v1/map/live", params={"alarm": alarm})
    assert list(_by_id(one["alarms"])) == [alarm] and one["events"]["features"] == []
    # another department's staff: not this alarm
    assert alarm not in _by_id(api.ok("live-staff", "GET", "/v1/map/live")["alarms"])
    api.ok("live-op", "POST", f"/v1/alarms/{alarm}/clear", json={"note": "fixed"})
    assert alarm not in _by_id(api.ok("live-admin", "GET", "/v1/map/live")["alarms"])


def test_an_event_is_announced_with_its_light_and_listed_while_open(api: Api) -> None:
    with psycopg.connect(api.url, autocommit=True) as listener:
        listener.execute("LISTEN cityops_live")
        event = api.ok("live-op", "POST", "/v1/events", 201, json={
            "channel": "hotline", "category_code": "E01.02", "description": "路灯不亮",
            "longitude": SPOT[0], "latitude": SPOT[1]})["id"]
        ours = []
        for note in listener.notifies(timeout=5):  # other tests' notes pass by too
            body = orjson.loads(note.payload)
            if body.get("kind") == "event" and body.get("id") == event:
                ours.append(body)
                break
    assert ours, "no note for the reported event within 5 s"
    # the test's clock put the event's deadlines in the past: red by the wall clock
    assert ours[0]["light"] == "red" and ours[0]["longitude"] == SPOT[0]
    assert ours[0]["state"] == "reported"
    listed = _by_id(api.ok("live-admin", "GET", "/v1/map/live")["events"])
    assert listed[event]["properties"]["light"] == "red"
    # a field technician reads neither events here nor on the live stream
    assert api.ok("live-tech", "GET", "/v1/map/live")["events"]["features"] == []
    refused = api.get("live-tech", "/v1/live", params={"events": "true"})
    assert refused.status_code == 403 and "city events" in refused.json()["detail"]
