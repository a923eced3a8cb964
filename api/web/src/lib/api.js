// Every call to the API goes through here: the bearer token, JSON in and out, and errors as
// ApiError with the API's {code, detail} so views can say why something was refused.
import { idleFor, session, signIn, signOut } from "./session.js";
import { has, t } from "../i18n/index.js";

// What the person reads: the API's code (or, lacking one, the status) in their language,
// then the API's own detail, which names the field or object concerned.
function explain(status, code, detail) {
  const why = code && has(`error.${code}`) ? t(`error.${code}`)
    : has(`error.status${status}`) ? t(`error.status${status}`) : t("error.other", { status });
  return detail && detail !== code ? `${why}（${detail}）` : why;
}

export class ApiError extends Error {
  constructor(status, code, detail, body = null) {
    super(explain(status, code, detail));
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.body = body; // the whole answer: a refused CSV import's per-row report is in `rows`
  }
}

function detailOf(body) {
  if (!body) return "";
  if (typeof body.detail === "string") return body.detail;
  if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg || String(d)).join("; ");
  return JSON.stringify(body.detail ?? body);
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === "") continue;
    for (const one of Array.isArray(v) ? v : [v]) q.append(k, String(one));
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

// One refresh at a time for every call waiting on it; a refresh the API refuses (reused,
// idle, ended) ends the tab's session.
let renewing = null;
export function renew() {
  if (!renewing) {
    renewing = fetch("/v1/auth/refresh", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: session.refreshToken }),
    }).then(async (res) => {
      if (!res.ok) throw new ApiError(res.status, "unauthenticated", "");
      signIn(await res.json());
    }).catch((err) => { signOut(); throw err; })
      .finally(() => { renewing = null; });
  }
  return renewing;
}

// before a call: an access token near its end is renewed if the person was active lately
export async function fresh(path) {
  if (!session.refreshToken || session.display || path.startsWith("/v1/auth/")) return;
  if (session.expiresAt - Date.now() > 20000) return;
  if (session.idleTimeoutS && idleFor() > session.idleTimeoutS * 1000) { signOut(); return; }
  await renew().catch(() => {});
}

// headers: extra request headers (the field app's Idempotency-Key)
export async function api(path, { method = "GET", body, params, form, file, headers: extra } = {}) {
  await fresh(path);
  const headers = { ...extra };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  let payload;
  if (form instanceof FormData) {
    payload = form; // a file upload (multipart): the browser sets the boundary
  } else if (file) {
    payload = file.data; // a file sent as it is (a CSV import): {data, type}
    headers["Content-Type"] = file.type;
  } else if (form) {
    payload = new URLSearchParams(form);
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path + query(params), { method, headers, body: payload });
  } catch (err) {
    throw new ApiError(0, "unreachable", String(err.message || err));
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!res.ok) {
    // an expired or revoked session: back to the login form, not a page of errors
    if (res.status === 401 && session.token && !path.startsWith("/v1/auth/")) signOut();
    throw new ApiError(res.status, data?.code, detailOf(data), data);
  }
  return data;
}

export async function login(username, password) {
  return api("/v1/auth/token", { method: "POST", form: { username, password } });
}

// every page of a paged list ({items, total}), for the few places that need all of it
export async function allPages(path, params = {}, pageSize = 1000) {
  const items = [];
  for (let offset = 0; ; offset += pageSize) {
    const page = await api(path, { params: { ...params, limit: pageSize, offset } });
    items.push(...page.items);
    if (items.length >= page.total || page.items.length === 0) return items;
  }
}
