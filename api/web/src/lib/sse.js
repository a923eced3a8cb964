// Server-Sent Events over fetch: EventSource cannot send the Authorization header, and a token
// in the URL would land in access logs. Reconnects with backoff until closed.
import { ref } from "vue";
import { session } from "./session.js";
import { fresh, query } from "./api.js";

function parseBlock(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue; // comments keep the stream open through proxies
    const at = line.indexOf(":");
    const field = at < 0 ? line : line.slice(0, at);
    const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return null;
  try { return { event, data: JSON.parse(data.join("\n")) }; } catch { return null; }
}

async function readStream(res, onEvent) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const parsed = parseBlock(buffer.slice(0, cut));
      buffer = buffer.slice(cut + 2);
      if (parsed) onEvent(parsed.event, parsed.data);
    }
  }
}

// subscribe("/v1/live", {device: [...], alarms: true}, (event, data) => ...) -> {close, state}
// state is "connecting", "live" or "down" for the connection light in the header.
export function subscribe(path, params, onEvent, { onEnd } = {}) {
  const state = ref("connecting");
  const controller = new AbortController();
  let closed = false;
  let delay = 500;

  async function run() {
    while (!closed) {
      try {
        await fresh(path); // a reconnect after the access token's end renews it first
        const res = await fetch(path + query(params), {
          headers: { Authorization: `Bearer ${session.token}`, Accept: "text/event-stream" },
          signal: controller.signal,
        });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        state.value = "live";
        delay = 500;
        await readStream(res, onEvent);
        if (onEnd) { closed = true; onEnd(); break; } // a finite stream (a job's events)
      } catch (err) {
        if (closed) break;
      }
      if (closed) break;
      state.value = "down";
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10000);
    }
  }
  run();
  return {
    state,
    close() { closed = true; controller.abort(); },
  };
}
