// The API refuses a form with 422 and a detail of `field.path: message` parts ("above: ...;
// target.point: ..."): each part goes beside its field, the rest above the form. The person
// reads the refusal in their language (error.<code>) followed by the API's own words.
import { t, has } from "../i18n/index.js";

export function fieldErrors(err, known = []) {
  const fields = {};
  const general = [];
  const parts = String(err.detail || "").split("; ").filter(Boolean);
  const why = err.code && has(`error.${err.code}`) ? t(`error.${err.code}`) : "";
  for (const part of parts) {
    const found = /^([A-Za-z_][\w.]*): (.*)$/.exec(part);
    const path = found && known.find((k) => found[1] === k || found[1].startsWith(`${k}.`));
    if (path) fields[path] = why ? `${why}（${found[2]}）` : found[2];
    else general.push(part);
  }
  if (!parts.length || general.length) {
    return { fields, general: general.length ? (why ? `${why}（${general.join("; ")}）` : general.join("; ")) : err.message };
  }
  return { fields, general: "" };
}

// a download with the bearer token (a plain link cannot carry it)
export async function download(path, token, name) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const url = URL.createObjectURL(await res.blob());
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.appendChild(a);
  a.click();
  a.remove();
  URL.revokeObjectURL(url);
}
