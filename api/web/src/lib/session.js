// Who is logged in. A person's short access token and refresh token live in sessionStorage (per
// tab, gone when the tab closes); the password is never kept. The access token is renewed with
// the refresh token while the person is active; idle longer than the API's idle timeout, the
// tab logs out (docs/security.md). A registered display (a wall, a big screen) is opened once
// at /?wall=1#display=<token>: its read-only token is kept in localStorage so the wall comes
// back after a restart and never shows the login form. Role and expiry are read from the
// token's claims to shape the UI; the API checks every call itself.
import { reactive } from "vue";

const KEY = "cityops.session";
const REFRESH = "cityops.refresh";
const IDLE = "cityops.idle";
const DISPLAY = "cityops.display";
const EMPTY = { token: null, username: null, role: null, expiresAt: 0, refreshToken: null,
                idleTimeoutS: 0, display: false };

function decodeClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(escape(atob(part)));
    return JSON.parse(json);
  } catch {
    return null;
  }
}

// the fragment never reaches the server or its logs; it is removed from the address at once
function displayToken() {
  const found = /(?:^#|&)display=([^&]+)/.exec(window.location.hash);
  if (found) {
    localStorage.setItem(DISPLAY, decodeURIComponent(found[1]));
    window.history.replaceState(window.history.state, "",
      window.location.pathname + window.location.search);
  }
  return localStorage.getItem(DISPLAY);
}

function restore() {
  const display = displayToken();
  if (display) {
    return { ...EMPTY, token: display, username: "display", role: "viewer", display: true,
             expiresAt: Number.POSITIVE_INFINITY };
  }
  const token = sessionStorage.getItem(KEY);
  const refreshToken = sessionStorage.getItem(REFRESH);
  const claims = token && decodeClaims(token);
  if (!claims || (claims.exp * 1000 <= Date.now() && !refreshToken)) return { ...EMPTY };
  return { ...EMPTY, token, username: claims.sub, role: claims.role, expiresAt: claims.exp * 1000,
           refreshToken, idleTimeoutS: Number(sessionStorage.getItem(IDLE) || 0) };
}

export const session = reactive(restore());

// the person's last keystroke or click: a refresh is asked for only after some activity
let lastActivity = Date.now();
for (const kind of ["pointerdown", "keydown", "wheel", "touchstart"]) {
  window.addEventListener(kind, () => { lastActivity = Date.now(); }, { passive: true });
}

export function idleFor() {
  return Date.now() - lastActivity;
}

// body: the answer of POST /v1/auth/token or /v1/auth/refresh
export function signIn(body) {
  const claims = decodeClaims(body.access_token);
  if (!claims) throw new Error("unreadable token");
  sessionStorage.setItem(KEY, body.access_token);
  if (body.refresh_token) sessionStorage.setItem(REFRESH, body.refresh_token);
  if (body.idle_timeout_s) sessionStorage.setItem(IDLE, String(body.idle_timeout_s));
  lastActivity = Math.max(lastActivity, Date.now() - 1000);
  Object.assign(session, { token: body.access_token, username: claims.sub, role: claims.role,
                           expiresAt: claims.exp * 1000, display: false,
                           refreshToken: body.refresh_token || session.refreshToken,
                           idleTimeoutS: body.idle_timeout_s || session.idleTimeoutS });
}

export function signOut() {
  const { token, refreshToken, display } = session;
  if (token && refreshToken && !display) {
    // ends the session on the server too: its refresh token is dead even if copied
    fetch("/v1/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` } })
      .catch(() => {});
  }
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(REFRESH);
  sessionStorage.removeItem(IDLE);
  if (display) localStorage.removeItem(DISPLAY); // a revoked display shows the login form
  Object.assign(session, { ...EMPTY });
}

// an idle person is logged out even if no call is made (a page left open at a desk)
window.setInterval(() => {
  if (session.token && !session.display && session.idleTimeoutS
      && idleFor() > session.idleTimeoutS * 1000) signOut();
}, 5000);
