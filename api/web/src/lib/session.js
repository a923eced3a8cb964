// Who is logged in. The JWT lives in sessionStorage (per tab, gone when the tab closes); the
// password is never kept. Role and expiry are read from the token's claims for display and
// to shape the UI; the API checks every call itself.
import { reactive } from "vue";

const KEY = "cityops.session";

function decodeClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(escape(atob(part)));
    return JSON.parse(json);
  } catch {
    return null;
  }
}

function restore() {
  const token = sessionStorage.getItem(KEY);
  const claims = token && decodeClaims(token);
  if (!claims || claims.exp * 1000 <= Date.now()) {
    return { token: null, username: null, role: null, expiresAt: 0 };
  }
  return { token, username: claims.sub, role: claims.role, expiresAt: claims.exp * 1000 };
}

export const session = reactive(restore());

export function signIn(token) {
  const claims = decodeClaims(token);
  if (!claims) throw new Error("unreadable token");
  sessionStorage.setItem(KEY, token);
  Object.assign(session, { token, username: claims.sub, role: claims.role,
                           expiresAt: claims.exp * 1000 });
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  Object.assign(session, { token: null, username: null, role: null, expiresAt: 0 });
}
