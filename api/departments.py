"""Which department's object each route reads or acts on, and the check made for it.

Every operation of the API has one decision here (tests/component/test_api_departments.py
enumerates the app's routes, so a route added without one fails the suite):

- `Obj(kind, param)`: the path names a department's object (a device, an alarm, a command,
  an event...). `require()` resolves its department and refuses (403) a caller whose
  departments do not include it, before the route runs.
- `LISTED`: a list; the route's query keeps only the caller's departments.
- `BODY`: a write whose body names departments or devices; the route checks them.
- `COUNTY`: county-wide administration (users, keys, audit, cloud, supervision sweeps):
  refused to any department-scoped caller.
- `SHARED`: no department's object: reference data (sites, profiles, categories), the
  catalogue (which exists to be browsed across departments; its grants and provider checks are
  its own), county-wide figures, and reading the events' case board (acting on an event is
  checked).

A caller's departments (`Principal.departments`) are an API key's list, or a department_staff
user's department; None (every department) for the county-wide roles' users.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from psycopg import AsyncConnection

from cityops.errors import Forbidden
from cityops.principal import Principal


@dataclass(frozen=True)
class Obj:
    kind: str
    param: str
    # True: one of the object's departments suffices (an event's lead or co-handlers)
    any_of: bool = False


LISTED, BODY, COUNTY, SHARED = "listed", "body", "county", "shared"
Decision = Obj | str

# the departments of one object; a row of NULL means an object of no department yet.
# `owner`: who may see it besides its departments (the reporter of an event not dispatched)
_RESOLVE = {
    "device": "SELECT department_id, NULL FROM devices WHERE id = %s",
    "gateway": "SELECT department_id, NULL FROM gateways WHERE id = %s",
    "alarm": "SELECT d.department_id, NULL FROM alarms a JOIN devices d ON d.id = a.device_id"
             " WHERE a.id = %s",
    "command": "SELECT d.department_id, NULL FROM commands c"
               " JOIN devices d ON d.id = c.device_id WHERE c.id = %s::uuid",
    "event": "SELECT department_id, reporter FROM events WHERE id = %s",
    # co-handling (协办): a task's department; an event's lead and live co-handlers
    "event_task": "SELECT department_id, NULL FROM event_tasks WHERE id = %s",
    "event_party": "SELECT e.department_id, e.reporter FROM events e WHERE e.id = %(k)s"
                   " UNION ALL SELECT t.department_id, e.reporter FROM event_tasks t"
                   " JOIN events e ON e.id = t.event_id WHERE t.event_id = %(k)s"
                   " AND t.state <> 'released'",
    # a preset (and its runs) spans devices: the caller needs every one of their departments
    "preset": "SELECT d.department_id, NULL FROM presets p"
              " CROSS JOIN jsonb_array_elements(p.steps) s"
              " JOIN devices d ON d.id = s->>'device' WHERE p.name = %s",
    # a camera of the map (facilities of kind camera) by id, linked device or name
    "camera": "SELECT f.department_id, NULL FROM facilities f, (SELECT %s::text AS k) q"
              " WHERE f.kind = 'camera' AND q.k IN (f.id, f.device_id, f.name)",
    "preset_run": "SELECT d.department_id, NULL FROM preset_runs r"
                  " CROSS JOIN jsonb_array_elements(r.steps) s"
                  " JOIN devices d ON d.id = s->>'device' WHERE r.id = %s::uuid",
    "quality_task": "SELECT department_id, NULL FROM quality.tasks WHERE id = %s",
    # a declared network link: both its devices' departments
    "network_link": "SELECT d.department_id, NULL FROM network_links l JOIN devices d"
                    " ON d.id IN (l.device_a, l.device_b) WHERE l.id::text = %s",
}

_DEVICE, _ALARM, _EVENT = Obj("device", "device"), Obj("alarm", "alarm"), Obj("event", "event_id")
_EVENT_ROUTES = ("verify", "register", "dispatch", "accept", "feedback", "check", "close",
                 "rework", "resume", "supervise", "requests", "tasks", "reminders")

DECISIONS: dict[tuple[str, str], Decision] = {
    ("GET", "/v1/devices/{device}/latest"): _DEVICE,
    ("GET", "/v1/devices/{device}/readings"): _DEVICE,
    ("GET", "/v1/devices/{device}"): _DEVICE,
    ("PATCH", "/v1/devices/{device}"): _DEVICE,  # and the new department: BODY in the route
    ("DELETE", "/v1/devices/{device}"): _DEVICE,
    ("GET", "/v1/devices/{device}/points"): _DEVICE,
    ("POST", "/v1/devices/{device}/commands"): _DEVICE,
    ("GET", "/v1/devices"): LISTED,
    ("POST", "/v1/devices"): BODY,
    ("POST", "/v1/devices/import"): BODY,
    ("GET", "/v1/readings/latest"): LISTED,
    ("GET", "/v1/gateways"): LISTED,
    ("POST", "/v1/gateways"): BODY,
    ("GET", "/v1/gateways/{gateway}"): Obj("gateway", "gateway"),
    ("POST", "/v1/gateways/{gateway}/credentials"): Obj("gateway", "gateway"),
    ("POST", "/v1/gateways/{gateway}/revoke"): Obj("gateway", "gateway"),
    ("GET", "/v1/commands/{command}"): Obj("command", "command"),
    ("GET", "/v1/commands"): LISTED,
    ("GET", "/v1/presets"): LISTED,
    ("GET", "/v1/presets/{name}"): Obj("preset", "name"),
    ("PUT", "/v1/presets/{name}"): Obj("preset", "name"),  # and its new steps: BODY
    ("POST", "/v1/presets/{name}/run"): Obj("preset", "name"),
    ("GET", "/v1/preset-runs/{run}"): Obj("preset_run", "run"),
    ("GET", "/v1/alarms"): LISTED,
    ("GET", "/v1/alarms/{alarm}"): _ALARM,
    ("GET", "/v1/alarms/{alarm}/history"): _ALARM,
    ("POST", "/v1/alarms/{alarm}/acknowledge"): _ALARM,
    ("POST", "/v1/alarms/{alarm}/clear"): _ALARM,
    ("GET", "/v1/live"): LISTED,
    # the case board is read county-wide (docs/city-operations.md: every workflow role reads
    # and lists events, so that cases move between departments); acting on one is checked
    ("GET", "/v1/events"): SHARED,
    ("GET", "/v1/events/{event_id}"): SHARED,
    ("GET", "/v1/events/{event_id}/attachments/{object_id}"): SHARED,
    ("POST", "/v1/events"): SHARED,  # anyone admitted reports; dispatch gives the department
    **{("POST", f"/v1/events/{{event_id}}/{step}"): _EVENT for step in _EVENT_ROUTES},
    ("POST", "/v1/events/{event_id}/requests/{request_id}/approve"): _EVENT,
    ("POST", "/v1/events/{event_id}/requests/{request_id}/refuse"): _EVENT,
    # co-handling (协办): the lead's department or a co-handler uploads photos; each
    # co-handler works its own task; the dispatcher (county-wide) adds, releases, reminds
    ("POST", "/v1/events/{event_id}/attachments"): Obj("event_party", "event_id", any_of=True),
    ("GET", "/v1/events/{event_id}/tasks"): SHARED,
    ("POST", "/v1/events/{event_id}/tasks/{task_id}/release"): _EVENT,
    ("POST", "/v1/events/{event_id}/tasks/{task_id}/accept"): Obj("event_task", "task_id"),
    ("POST", "/v1/events/{event_id}/tasks/{task_id}/feedback"): Obj("event_task", "task_id"),
    ("POST", "/v1/events/{event_id}/tasks/{task_id}/evaluate"): _EVENT,  # the lead rates
    ("GET", "/v1/events/evaluation"): COUNTY,
    ("POST", "/v1/events/sweep"): COUNTY,
    ("PUT", "/v1/event-alarm-rules/{rule_id}"): COUNTY,
    ("GET", "/v1/event-alarm-rules"): SHARED,
    ("GET", "/v1/event-categories"): SHARED,
    # Open311: a citizen application's key; its listing shows only what it reported
    ("GET", "/v1/open311/services.json"): SHARED,
    ("GET", "/v1/open311/services/{service_code}.json"): SHARED,
    ("POST", "/v1/open311/requests.json"): SHARED,
    ("GET", "/v1/open311/requests.json"): LISTED,
    ("GET", "/v1/open311/requests/{service_request_id}.json"): LISTED,
}
for _path in ("/v1/sites", "/v1/departments", "/v1/profiles"):
    DECISIONS[("GET", _path)] = SHARED
    DECISIONS[("POST", _path)] = COUNTY
DECISIONS[("GET", "/v1/profiles/{profile}")] = SHARED
DECISIONS[("PUT", "/v1/profiles/{profile}")] = COUNTY
for _method, _path in (("GET", "/v1/users"), ("POST", "/v1/users"),
                       ("PATCH", "/v1/users/{username}"), ("GET", "/v1/api-keys"),
                       ("POST", "/v1/api-keys"), ("POST", "/v1/api-keys/{key_id}/revoke"),
                       ("GET", "/v1/audit"), ("GET", "/v1/api-usage")):
    DECISIONS[(_method, _path)] = COUNTY

# sessions and 等保 (issues 18, 19; docs/security.md): a person's own session, or county-wide
# security administration
for _path in ("/v1/auth/logout", "/v1/auth/totp", "/v1/auth/totp/confirm"):
    DECISIONS[("POST", _path)] = SHARED
for _method, _path in (("GET", "/v1/displays"), ("POST", "/v1/displays"),
                       ("POST", "/v1/displays/{display}/revoke"), ("GET", "/v1/lockouts"),
                       ("POST", "/v1/lockouts/unlock"), ("PUT", "/v1/users/{username}/role"),
                       ("POST", "/v1/users/{username}/totp/reset"),
                       ("GET", "/v1/audit/export"), ("GET", "/v1/audit/verify")):
    DECISIONS[(_method, _path)] = COUNTY
# the data administrator's console pages (issue 18): alarm rules, event categories and their
# time limits are county-wide configuration
for _method, _path in (("GET", "/v1/rules"), ("POST", "/v1/rules"),
                       ("GET", "/v1/rules/{rule_id}"), ("PUT", "/v1/rules/{rule_id}"),
                       ("PUT", "/v1/rules/{rule_id}/enabled"), ("POST", "/v1/rules/preview"),
                       ("POST", "/v1/event-categories"),
                       ("PUT", "/v1/event-categories/{code}"), ("PUT", "/v1/event-time-limits")):
    DECISIONS[(_method, _path)] = COUNTY


# 数据汇聚 (issue 14, api/routes/systems.py): lists kept to the caller's departments; a write
# or a test names a system, source or sync whose department the route checks
for _path in ("/v1/systems", "/v1/sources", "/v1/syncs"):
    DECISIONS[("GET", _path)] = LISTED
    DECISIONS[("POST", _path)] = BODY
DECISIONS[("GET", "/v1/sync-runs")] = LISTED
# one run's progress stream and set-aside rows: the route checks the run's department
DECISIONS[("GET", "/v1/sync-runs/{run_id}/events")] = BODY
DECISIONS[("GET", "/v1/sync-runs/{run_id}/quarantine")] = BODY
DECISIONS[("PATCH", "/v1/systems/{system_id}")] = BODY


# event analysis (issue 17, api/routes/analysis.py): county-wide figures for the county-wide
# roles; merge suggestions are the (county-wide) dispatcher's
for _path in ("/v1/analysis/hotspots", "/v1/analysis/recurring", "/v1/analysis/forecast",
              "/v1/analysis/forecast/accuracy", "/v1/analysis/departments"):
    DECISIONS[("GET", _path)] = SHARED
DECISIONS[("POST", "/v1/analysis/forecast")] = COUNTY
# evaluation (api/routes/evaluation.py): county-wide figures (every place against its own past)
# for the county-wide roles; the scores entered by hand are the county 监督中心's
for _path in ("/v1/evaluation/{framework}", "/v1/evaluation/{framework}/scores",
              "/v1/evaluation/{framework}/places", "/v1/evaluation-rates"):
    DECISIONS[("GET", _path)] = SHARED
DECISIONS[("PUT", "/v1/evaluation/{framework}/manual-scores")] = COUNTY
DECISIONS[("GET", "/v1/merge-suggestions")] = COUNTY
DECISIONS[("POST", "/v1/merge-suggestions/{suggestion_id}/accept")] = COUNTY
DECISIONS[("POST", "/v1/merge-suggestions/{suggestion_id}/refuse")] = COUNTY
# the indicator system (issue 17, api/routes/indicators.py): county-wide figures anyone
# admitted reads; definitions, computing and alarm handling are county-wide work
for _path in ("/v1/indicator-classes", "/v1/indicators", "/v1/indicators/{code}",
              "/v1/indicators/{code}/values", "/v1/indicators/{code}/breakdown",
              "/v1/indicator-alarms", "/v1/hub", "/v1/cockpit", "/v1/reports",
              "/v1/reports/{report_id}/{fmt}"):
    DECISIONS[("GET", _path)] = SHARED
DECISIONS[("POST", "/v1/reports")] = SHARED  # a county-wide report, made on demand
for _method, _path in (("PUT", "/v1/indicators/{code}"),
                       ("POST", "/v1/indicators/{code}/compute"),
                       ("POST", "/v1/indicator-alarms/{alarm_id}/acknowledge"),
                       ("POST", "/v1/indicator-alarms/{alarm_id}/clear")):
    DECISIONS[(_method, _path)] = COUNTY
DECISIONS[("POST", "/v1/sources/{source_id}/test")] = BODY
DECISIONS[("POST", "/v1/syncs/{sync_id}/run")] = BODY
# 数据服务 (issue 15): the grant on the dataset's resource decides fields and rows
DECISIONS[("GET", "/v1/datasets/{dataset_id}/rows")] = SHARED
# 数据质量 (issue 15, api/routes/quality.py): lists kept to the providing department; a write,
# or a read naming one dataset or run, checks that dataset's department in the route
for _path in ("/v1/quality/rules", "/v1/quality/runs", "/v1/quality/results",
              "/v1/quality/scores", "/v1/quality/tasks", "/v1/quality/quarantine"):
    DECISIONS[("GET", _path)] = LISTED
DECISIONS[("PUT", "/v1/quality/rules/{dataset_id}")] = BODY
DECISIONS[("POST", "/v1/quality/runs")] = BODY
# 部门工作台 (issue 18): a department's staff answer their own 校核纠错 tasks
for _path in ("/v1/quality/tasks/{task_id}/comments", "/v1/quality/tasks/{task_id}/resolve"):
    DECISIONS[("POST", _path)] = Obj("quality_task", "task_id")
DECISIONS[("GET", "/v1/services")] = SHARED  # county-wide use figures of the data APIs
# 数据血缘 (issue 15, api/routes/lineage.py): metadata browsed across departments, as the catalogue
DECISIONS[("GET", "/v1/lineage")] = SHARED
# 数据元, code tables and layer models (api/routes/standards.py): reference data and metadata
for _path in ("/v1/data-elements", "/v1/code-tables", "/v1/code-tables/{table_id}",
              "/v1/layer-models"):
    DECISIONS[("GET", _path)] = SHARED

# notifications (issue 18, api/routes/notifications.py): channels and subscriptions are
# county-wide configuration; the delivery log is kept to the caller's departments
for _method, _path in (("GET", "/v1/notification-channels"), ("POST", "/v1/notification-channels"),
                       ("DELETE", "/v1/notification-channels/{channel_id}"),
                       ("POST", "/v1/notification-channels/{channel_id}/test"),
                       ("GET", "/v1/subscriptions"), ("POST", "/v1/subscriptions"),
                       ("DELETE", "/v1/subscriptions/{subscription_id}")):
    DECISIONS[(_method, _path)] = COUNTY
DECISIONS[("GET", "/v1/deliveries")] = LISTED

# video (issue 20, api/routes/cameras.py): a camera is its department's; a wall is a device;
# the camera a body names is checked in the route
_CAMERA = Obj("camera", "camera")
for _method, _path in (("GET", "/v1/cameras/{camera}"), ("PUT", "/v1/cameras/{camera}/device"),
                      ("POST", "/v1/cameras/{camera}/snapshot"),
                      ("GET", "/v1/cameras/{camera}/snapshot")):
    DECISIONS[(_method, _path)] = _CAMERA
for _method, _path in (("GET", "/v1/walls/{wall}/inputs"),
                      ("PUT", "/v1/walls/{wall}/inputs/{input_no}"),
                      ("POST", "/v1/walls/{wall}/windows/{window}/camera")):
    DECISIONS[(_method, _path)] = Obj("device", "wall")

# the network page (issue 20, api/routes/network.py): the topology and declared links are kept
# to the caller's devices; a declaration's two devices are checked in the route
DECISIONS[("GET", "/v1/network/topology")] = LISTED
DECISIONS[("GET", "/v1/network/links")] = LISTED
DECISIONS[("POST", "/v1/network/links")] = BODY
DECISIONS[("DELETE", "/v1/network/links/{link}")] = Obj("network_link", "link")
DECISIONS[("GET", "/v1/network/devices/{device}/ports")] = Obj("device", "device")

# 城管通 (issue 18 item 4, api/routes/field.py): an inspector's own reports and the closures
# waiting for a check read like the case board; the check acts on one event; a worker's tasks
# are kept to the caller's departments in the query
DECISIONS[("GET", "/v1/field/reports")] = SHARED
DECISIONS[("GET", "/v1/field/checks")] = SHARED
DECISIONS[("POST", "/v1/events/{event_id}/site-check")] = _EVENT
DECISIONS[("GET", "/v1/field/tasks")] = LISTED


def decision(method: str, template: str) -> Decision | None:
    if template.startswith("/v1/cloud/"):
        return COUNTY  # cloud control is the county's platform team's, every route of it
    if template.startswith(("/v1/catalogue/", "/v1/dashboards/", "/v1/economy/")):
        return SHARED
    if template.startswith(("/v1/map/basemap", "/v1/map/glyphs/")):
        return SHARED  # the backdrop: no department's data
    if template.startswith("/v1/map/"):
        return LISTED  # devices and alarms kept to the caller's (tests/integration/map)
    return DECISIONS.get((method, template))


async def object_departments(conn: AsyncConnection, kind: str, key: str
                             ) -> tuple[list[str | None], str | None] | None:
    """The departments of an object and its owner; None when there is no such object."""
    try:  # a malformed id is no object: the route's own validation answers it
        if kind in ("command", "preset_run"):
            key = str(uuid.UUID(key))
        elif kind in ("alarm", "event", "event_task", "event_party", "quality_task") and not (
                0 < int(key) < 2**62):
            return None
    except ValueError:
        return None
    cur = await conn.execute(_RESOLVE[kind], {"k": int(key)} if kind == "event_party" else (key,))
    rows = await cur.fetchall()
    if not rows:
        return None
    return [r[0] for r in rows], rows[0][1]


async def guard(conn: AsyncConnection, principal: Principal, method: str, template: str,
                params: dict[str, str]) -> None:
    """The department check of the route, made before it runs (see the module doc)."""
    if principal.departments is None:
        return
    found = decision(method, template)
    if found == COUNTY:
        raise Forbidden(f"{principal.name} is limited to departments "
                        f"{sorted(principal.departments)}: county-wide operations are not")
    if not isinstance(found, Obj) or found.param not in params:
        return
    resolved = await object_departments(conn, found.kind, params[found.param])
    if resolved is None:
        return  # no such object: the route answers 404
    departments, owner = resolved
    if owner is not None and owner == principal.name:
        return
    if found.any_of and any(principal.sees_department(d) for d in departments if d):
        return
    outside = sorted({str(d) for d in departments if not principal.sees_department(d)})
    if outside:
        raise Forbidden(f"{found.kind} {params[found.param]!r} belongs to department(s) "
                        f"{', '.join(outside)}, outside {principal.name}'s")


def check_departments(principal: Principal, departments: set[str | None], what: str) -> None:
    """For BODY routes: every department a write names must be the caller's."""
    outside = sorted({str(d) for d in departments if not principal.sees_department(d)})
    if outside:
        raise Forbidden(f"{what}: department(s) {', '.join(outside)} outside "
                        f"{principal.name}'s")
