// The figures of the big screen, computed from the API's lists: device and gateway health by
// site and department, alarms by severity, events by state and light, ingestion rate.
import { api, allPages } from "./api.js";
import { can } from "./permissions.js";

export const SEVERITIES = ["critical", "major", "minor", "warning"];
const OPEN_EVENT = new Set(["reported", "verifying", "registered", "dispatched", "processing",
                            "suspended", "feedback", "checking"]);

// a device is online when its gateway says it is online and reports the device online
export function deviceHealth(devices, gateways) {
  const byGateway = Object.fromEntries(gateways.map((g) => [g.id, g]));
  return devices.map((d) => {
    const status = byGateway[d.gateway]?.last_status;
    const online = status?.state === "online" && status.devices?.[d.id] === "online";
    // why the agent cannot reach it: "<code>: <detail>" from the gateway's status
    const reason = online ? null : (status?.reasons?.[d.id] ?? null);
    return { ...d, online, reason };
  });
}

export function groupHealth(items, key) {
  const groups = {};
  for (const item of items) {
    const k = item[key] || "—";
    groups[k] ??= { key: k, online: 0, offline: 0 };
    groups[k][item.online ? "online" : "offline"] += 1;
  }
  return Object.values(groups).sort((a, b) => (b.online + b.offline) - (a.online + a.offline));
}

export function gatewayOnline(g) {
  return !g.revoked_at && g.last_status?.state === "online";
}

export function alarmCounts(alarms) {
  const counts = Object.fromEntries(SEVERITIES.map((s) => [s, 0]));
  for (const a of alarms) counts[a.severity] = (counts[a.severity] || 0) + 1;
  return counts;
}

export function eventFigures(events) {
  const byState = {};
  const stateLights = {}; // state -> {green, yellow, red, none}
  const lights = { green: 0, yellow: 0, red: 0 };
  let open = 0;
  for (const e of events) {
    byState[e.state] = (byState[e.state] || 0) + 1;
    stateLights[e.state] ??= { green: 0, yellow: 0, red: 0, none: 0 };
    stateLights[e.state][e.clock?.light || "none"] += 1;
    if (!OPEN_EVENT.has(e.state)) continue;
    open += 1;
    if (e.clock?.light) lights[e.clock.light] += 1;
  }
  return { byState, stateLights, lights, open };
}

async function optional(allowed, load, empty) {
  if (!allowed) return empty;
  try { return await load(); } catch { return empty; }
}

// one snapshot of everything the wall shows; what the role may not read stays empty
export async function loadOverview() {
  const [devices, gateways, sites, departments] = await Promise.all([
    allPages("/v1/devices"), allPages("/v1/gateways"), allPages("/v1/sites"),
    allPages("/v1/departments"),
  ]);
  const [alarms, events, ingestion, services, capacity] = await Promise.all([
    optional(can("page.alarms"), async () => {
      const [active, acked] = await Promise.all([
        api("/v1/alarms", { params: { state: "active", limit: 1000 } }),
        api("/v1/alarms", { params: { state: "acknowledged", limit: 1000 } })]);
      return [...active.items, ...acked.items];
    }, null),
    optional(can("page.events"), () => api("/v1/events", { params: { limit: 5000 } }), null),
    optional(can("dashboards.read"), () => api("/v1/dashboards/ingestion"), null),
    optional(can("dashboards.read"), () => api("/v1/dashboards/services",
                                               { params: { top: 5 } }), null),
    optional(can("page.cloud"), () => api("/v1/cloud/capacity"), null),
  ]);
  return { devices: deviceHealth(devices, gateways), gateways, sites, departments, alarms,
           events, ingestion, services, capacity, at: Date.now() };
}

// readings per minute from two successive totals (the dashboard counts every stored batch)
export function ratePerMin(previous, current) {
  if (!previous?.ingestion || !current?.ingestion) return null;
  const dt = (current.at - previous.at) / 60000;
  if (dt <= 0) return null;
  return Math.max(0, (current.ingestion.totals.readings - previous.ingestion.totals.readings) / dt);
}

export function hypervisorUse(capacity) {
  if (!capacity) return [];
  const order = ["vcpus", "ram_mb", "disk_gb"];
  return capacity.filter((c) => c.scope === "hypervisor" && c.limit > 0)
    .map((c) => ({ metric: c.metric, used: c.used, limit: c.limit, share: c.used / c.limit }))
    .sort((a, b) => (order.indexOf(a.metric) + 99) % 99 - (order.indexOf(b.metric) + 99) % 99);
}
