// A small history router: a few top-level pages and two detail pages need no library.
// The API answers index.html for these paths too, so a reload or a shared link works.
import { reactive } from "vue";

const PATTERNS = [
  ["/", "wall"],
  ["/devices", "devices"],
  ["/devices/:id", "device"],
  ["/control", "control"],
  ["/alarms", "alarms"],
  ["/events", "events"],
  ["/events/:id", "event"],
  ["/cloud", "cloud"],
  ["/data", "data"],
  ["/map", "map"],
  ["/network", "network"],
  ["/decisions", "decisions"],
  ["/admin", "admin"],
  ["/desk", "desk"],
  // 城管通, the phone pages (src/field/): their own layout, tabs and case pages
  ["/m", "field"],
  ["/m/:tab", "field"],
  ["/m/:tab/:id", "field"],
];

function match(pathname) {
  const parts = pathname.replace(/\/+$/, "").split("/").filter(Boolean);
  for (const [pattern, name] of PATTERNS) {
    const want = pattern.split("/").filter(Boolean);
    if (want.length !== parts.length) continue;
    const params = {};
    const ok = want.every((w, i) => {
      if (w.startsWith(":")) { params[w.slice(1)] = decodeURIComponent(parts[i]); return true; }
      return w === parts[i];
    });
    if (ok) return { name, params };
  }
  return { name: "notfound", params: {} };
}

function current() {
  const url = new URL(window.location.href);
  return { ...match(url.pathname), path: url.pathname,
           query: Object.fromEntries(url.searchParams) };
}

export const route = reactive(current());

export function navigate(to, { replace = false } = {}) {
  if (to === window.location.pathname + window.location.search) return;
  window.history[replace ? "replaceState" : "pushState"]({}, "", to);
  Object.assign(route, current());
  window.scrollTo(0, 0);
}

window.addEventListener("popstate", () => Object.assign(route, current()));
