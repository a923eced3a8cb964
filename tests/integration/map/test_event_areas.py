"""An event's grid cell, community, town and responsible department come from its point when
it is reported (migration 081), and dispatch without a department offers the department whose
responsibility area holds the point; a point outside every cell is stored and flagged."""

from __future__ import annotations

import psycopg
import pytest

from cityops.principal import Role
from tests.component.test_events_kit import Api, api_client, cst, unique
from tests.integration.map.map_kit import seed_areas


@pytest.fixture(scope="module")
def api(settings):
    with api_client(settings, cst(2026, 11, 16, 9, 0)) as api:
        api.dept = api.department(unique("map-dept"), "城管局")
        seed_areas(api.url, api.dept)
        api.person("map-op", Role.OPERATOR)
        api.person("map-disp", Role.DISPATCHER)
        yield api


def report(api: Api, **over) -> int:
    body = {"channel": "hotline", "category_code": "E01.02", "description": "垃圾堆放",
            "grid": "typed-by-hand", **over}
    return api.ok("map-op", "POST", "/v1/events", 201, json=body)["id"]


def row(api: Api, event: int) -> tuple:
    with psycopg.connect(api.url) as conn:
        return conn.execute("SELECT grid, community_code, town_code, area_department_id,"
                            " area_assigned FROM events WHERE id = %s", (event,)).fetchone()


def test_point_gives_cell_community_town_and_department(api: Api) -> None:
    west = report(api, longitude=116.65, latitude=33.85)   # west town, in the community
    east = report(api, longitude=116.95, latitude=34.05)   # east town, in the department's area
    # cells are 0.1 degree, numbered column by column from the south-west corner
    assert row(api, west) == ("340621001001001", "340621100001", "340621100", None, True)
    assert row(api, east) == ("340621001001012", None, "340621101", api.dept, True)
    shown = api.ok("map-op", "GET", f"/v1/events/{east}")  # what the dispatcher is offered
    assert (shown["grid"], shown["town_code"], shown["area_department_id"],
            shown["area_assigned"]) == ("340621001001012", "340621101", api.dept, True)


def test_point_outside_every_area_is_stored_and_flagged(api: Api) -> None:
    event = report(api, longitude=118.0, latitude=32.5)
    assert row(api, event) == ("typed-by-hand", None, None, None, False)
    assert row(api, report(api)) == ("typed-by-hand", None, None, None, None)


def test_moving_the_point_reassigns(api: Api) -> None:
    event = report(api, longitude=116.65, latitude=33.85)
    with psycopg.connect(api.url) as conn:
        conn.execute("UPDATE events SET longitude = 116.95, latitude = 34.05 WHERE id = %s",
                     (event,))
    assert row(api, event)[2:4] == ("340621101", api.dept)


def test_dispatch_without_department_takes_the_area_department(api: Api) -> None:
    event = report(api, longitude=116.95, latitude=34.05)
    api.ok("map-disp", "POST", f"/v1/events/{event}/register", json={})
    done = api.ok("map-disp", "POST", f"/v1/events/{event}/dispatch", json={})
    assert done["department_id"] == api.dept
