// Sending a command and following it to its outcome, so every control shows the value the
// device read back (or why it did not take it). The API answers 202 at once; the outcome comes
// from the agent, usually within a second.
import { api } from "./api.js";

const FINAL = new Set(["succeeded", "failed", "rejected", "expired"]);
const TTL_S = 15;

export function isFinal(state) {
  return FINAL.has(state);
}

async function follow(id, deadline) {
  for (;;) {
    const cmd = await api(`/v1/commands/${encodeURIComponent(id)}`);
    if (FINAL.has(cmd.state) || Date.now() > deadline) return cmd;
    await new Promise((r) => setTimeout(r, 250));
  }
}

// body: {point, value} or {method, args}; resolves with the finished command
export async function sendCommand(device, body) {
  const accepted = await api(`/v1/devices/${encodeURIComponent(device)}/commands`, {
    method: "POST", body: { ...body, ttl_s: TTL_S },
  });
  return follow(accepted.id, Date.now() + (TTL_S + 8) * 1000);
}

// a camera (id or name) onto a wall window: the API finds the camera's input on that wall and
// switches the window to it, as a write command followed like any other (docs/video.md)
export async function cameraToWindow(wall, window, camera) {
  const accepted = await api(`/v1/walls/${encodeURIComponent(wall)}/windows/${window}/camera`, {
    method: "POST", body: { camera, ttl_s: TTL_S },
  });
  return follow(accepted.id, Date.now() + (TTL_S + 8) * 1000);
}

export async function runPreset(name) {
  const run = await api(`/v1/presets/${encodeURIComponent(name)}/run`, { method: "POST" });
  const deadline = Date.now() + 60000;
  for (;;) {
    const now = await api(`/v1/preset-runs/${encodeURIComponent(run.id)}`);
    if (now.state !== "running" || Date.now() > deadline) return now;
    await new Promise((r) => setTimeout(r, 300));
  }
}
