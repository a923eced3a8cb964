// What each role may do, mirrored from the API's `x-roles` (docs/api.md, docs/city-operations.md)
// to shape the screens: pages a role cannot read are not offered, controls it cannot use are
// shown locked with the reason. The API decides; a refusal it sends is shown as it is.
import { session } from "./session.js";

const ALL = ["admin", "ops_engineer", "field_technician", "operator", "dispatcher",
             "department_staff", "viewer"];

const RULES = {
  "page.wall": ALL,
  "page.devices": ALL,
  "page.control": ALL,
  "page.alarms": ["admin", "dispatcher", "field_technician", "operator", "viewer"],
  "page.events": ["admin", "department_staff", "dispatcher", "operator", "viewer"],
  "page.cloud": ["admin", "ops_engineer"],
  "page.data": [...ALL, "data_admin"],
  "page.map": ALL,
  // 网络 (issue 20): the command centre's network; declaring links is the engineers'
  "page.network": ["admin", "operator", "ops_engineer", "field_technician"],
  "network.declare": ["admin", "ops_engineer", "field_technician"],  // POST/DELETE /v1/network/links
  // 决策 (issue 17): indicators for every county-wide role and department staff; event
  // analysis for the county-wide roles; definitions for the data bureau
  "page.decisions": ["admin", "operator", "dispatcher", "viewer", "data_admin", "department_staff"],
  "analysis.read": ["admin", "operator", "dispatcher", "viewer", "data_admin"],
  "indicators.define": ["admin", "data_admin"],
  "merge.decide": ["admin", "dispatcher"],
  // 部门工作台 (issue 18): the department's requests, resources, quality tasks and events
  "page.desk": ["admin", "department_staff"],
  "dashboards.read": ["admin", "department_staff", "dispatcher", "operator", "ops_engineer",
                      "viewer"],
  "device.command": ["admin", "operator"],
  "camera.snapshot": ["admin", "operator", "dispatcher"],  // POST /v1/cameras/{camera}/snapshot
  "preset.run": ["admin", "operator"],
  "commands.read": ["admin", "field_technician", "operator"],
  "alarm.acknowledge": ["admin", "operator"],
  "alarm.clear": ["admin", "operator"],
  "live.alarms": ["admin", "operator", "field_technician", "dispatcher", "viewer",
                  "department_staff"],
  "live.commands": ["admin", "operator", "field_technician"],
  "event.report": ["admin", "dispatcher", "department_staff", "operator", "field_technician"],
  "event.supervise": ["admin", "dispatcher"],
  "event.approve": ["admin", "dispatcher"],
  "event.cohandle": ["admin", "dispatcher"],  // add/release co-handlers, 催办 (event_tasks.py)
  "cloud.job": ["admin", "ops_engineer"],
  // gateways, devices, CSV import (api/routes/gateways.py, device_registry.py)
  "device.register": ["admin", "field_technician"],
  "lineage.read": ["admin", "data_admin", "department_staff", "viewer"],
  // 规上工业 (api/routes/economy.py): read county-wide; loaded by 统计局/经信局 staff and the
  // data bureau (数据汇聚)
  "economy.read": ["admin", "department_staff", "dispatcher", "operator", "viewer", "data_admin"],
  "economy.import": ["admin", "department_staff", "data_admin"],
  // 数据质量 (issue 15): the data bureau sets and runs rules; departments see their own
  "quality.read": ["admin", "data_admin", "department_staff", "viewer"],
  "quality.write": ["data_admin"],
  "sync.read": ["admin", "data_admin", "department_staff", "viewer"],
  "sync.write": ["admin", "data_admin"],
  // 管理 (issue 18): each administrator's duty (三员分立, docs/security.md)
  "page.admin": ["admin", "data_admin", "security_admin", "audit_admin"],
  "admin.audit": ["audit_admin"],
  "admin.rules": ["admin", "data_admin"],
  "admin.categories": ["admin", "data_admin"],
  "admin.users": ["admin", "security_admin"],
  "admin.keys": ["security_admin"],
  "admin.lockouts": ["security_admin"],
  "users.manage": ["admin"],
  "users.role": ["security_admin"],
  // 城管通 (/m, issue 18): reporting is every reporter's (cityevents/workflow.py REPORTER_ROLES);
  // on-site checks the inspector's (监督员); tasks the department's
  "field.report": ["admin", "dispatcher", "department_staff", "operator", "field_technician",
                   "inspector"],
  "field.reports": ["admin", "dispatcher", "department_staff", "operator", "field_technician",
                    "inspector"],
  "field.check": ["admin", "inspector"],
  "field.tasks": ["admin", "department_staff"],
};

export function can(action, role = session.role) {
  return (RULES[action] || []).includes(role);
}

export function rolesFor(action) {
  return RULES[action] || [];
}

// The event workflow (cityevents/workflow.py): from which states each step goes,
// and which roles take it. department_staff act on their own department's events only; the
// console cannot tell a department apart, so the API's refusal is shown when it applies.
export const EVENT_ACTIONS = [
  { name: "verify", from: ["reported"], roles: ["dispatcher"] },
  { name: "register", from: ["reported", "verifying"], roles: ["dispatcher"] },
  { name: "dispatch", from: ["registered"], roles: ["dispatcher"], needsDepartment: true },
  { name: "accept", from: ["dispatched"], roles: ["department_staff"] },
  { name: "feedback", from: ["processing"], roles: ["department_staff"] },
  { name: "check", from: ["feedback"], roles: ["dispatcher"] },
  { name: "close", from: ["checking"], roles: ["dispatcher"] },
  { name: "rework", from: ["checking"], roles: ["dispatcher"] },
  { name: "resume", from: ["suspended"], roles: ["dispatcher", "department_staff"] },
];

export const EVENT_REQUESTS = [
  { kind: "cancel", from: ["reported", "verifying", "registered"], roles: ["dispatcher"] },
  { kind: "suspend", from: ["processing"], roles: ["department_staff"] },
  { kind: "extend", from: ["dispatched", "processing"], roles: ["department_staff"],
    needsAmount: true },
  { kind: "return", from: ["dispatched", "processing"], roles: ["department_staff"] },
];

export const EVENT_STATES = ["reported", "verifying", "registered", "dispatched", "processing",
                             "suspended", "feedback", "checking", "closed", "cancelled"];

export function eventActionsFor(state, role = session.role) {
  const ok = (roles) => role === "admin" || roles.includes(role);
  return {
    steps: EVENT_ACTIONS.filter((a) => a.from.includes(state) && ok(a.roles)),
    requests: EVENT_REQUESTS.filter((r) => r.from.includes(state) && ok(r.roles)),
  };
}
