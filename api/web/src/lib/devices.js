// Device names for the pages that only have ids (alarms, preset steps, commands): loaded once
// per tab from /v1/devices and shared, so every page shows 配电柜 1 rather than meter-01.
import { reactive } from "vue";
import { allPages } from "./api.js";

const names = reactive({});
let loading = null;

export function loadDeviceNames() {
  loading ??= allPages("/v1/devices").then((devices) => {
    for (const d of devices) names[d.id] = d.title || d.id;
  }).catch(() => { loading = null; }); // a role without the device list keeps the ids
  return loading;
}

export function deviceName(id) {
  return names[id] || id;
}
