// Numbers, times and units as people in the command centre read them.
import { locale } from "../i18n/index.js";

const UNIT_TEXT = { degC: "°C", "ug/m3": "µg/m³", "m3/s": "m³/s" };

export function unit(u) {
  return UNIT_TEXT[u] ?? u ?? "";
}

export function num(v, digits) {
  if (v === null || v === undefined || v === "") return "—";
  if (typeof v === "boolean") return v ? "1" : "0";
  if (typeof v !== "number") return String(v);
  const d = digits ?? (Number.isInteger(v) ? 0 : Math.abs(v) >= 100 ? 1 : 2);
  return v.toLocaleString(locale.value === "zh" ? "zh-CN" : "en-GB",
                          { minimumFractionDigits: d, maximumFractionDigits: d });
}

export function compact(v) {
  if (v === null || v === undefined) return "—";
  if (locale.value === "zh") {
    if (Math.abs(v) >= 1e8) return `${(v / 1e8).toFixed(2)}亿`;
    if (Math.abs(v) >= 1e4) return `${(v / 1e4).toFixed(1)}万`;
    return num(v, 0);
  }
  return new Intl.NumberFormat("en-GB", { notation: "compact", maximumFractionDigits: 1 })
    .format(v);
}

export function pct(share, digits = 0) {
  if (share === null || share === undefined) return "—";
  return `${(share * 100).toFixed(digits)}%`;
}

function loc() {
  return locale.value === "zh" ? "zh-CN" : "en-GB";
}

export function time(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleTimeString(loc(), { hour12: false });
}

export function dateTime(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleString(loc(), { hour12: false, year: "numeric",
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function ago(iso, now = Date.now()) {
  if (!iso) return "—";
  const s = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000));
  const zh = locale.value === "zh";
  if (s < 60) return zh ? `${s}秒前` : `${s}s ago`;
  if (s < 3600) return zh ? `${Math.floor(s / 60)}分钟前` : `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return zh ? `${Math.floor(s / 3600)}小时前` : `${Math.floor(s / 3600)} h ago`;
  return zh ? `${Math.floor(s / 86400)}天前` : `${Math.floor(s / 86400)} d ago`;
}

export function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}
