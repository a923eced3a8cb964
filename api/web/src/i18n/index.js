// One dictionary per language (zh.js, en.js), flat keys. Chinese is the default; the choice is
// kept per browser. t("key", {n: 3}) fills {n}. A key missing from the active dictionary falls
// back to the other language, then to the key itself (scripts/check-i18n.mjs fails the build
// before that can ship).
import { ref } from "vue";
import zh from "./zh.js";
import en from "./en.js";

const DICTS = { zh, en };
const KEY = "cityops.locale";

export const locale = ref(localStorage.getItem(KEY) === "en" ? "en" : "zh");

export function setLocale(next) {
  locale.value = next === "en" ? "en" : "zh";
  localStorage.setItem(KEY, locale.value);
  document.documentElement.lang = locale.value === "zh" ? "zh-CN" : "en";
}

function fill(text, params) {
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (_, k) => (params[k] ?? `{${k}}`));
}

// Every word the page asked for and the active dictionary lacked, for the browser test that
// fails the build on it (tests/e2e/test_console_i18n.py reads window.__i18nMissing).
const missing = new Set();
if (typeof window !== "undefined") window.__i18nMissing = missing;

export function t(key, params) {
  const text = DICTS[locale.value][key] ?? DICTS[locale.value === "zh" ? "en" : "zh"][key];
  if (!(key in DICTS[locale.value])) missing.add(key);
  return fill(text ?? key, params);
}

export function has(key) {
  return key in DICTS[locale.value];
}

// A point's name in the current language: "point.window_1_source" exactly, else the pattern
// with its numbers taken out ("point.window_N_source" with {n}), else the profile's title.
export function pointTitle(name, fallback) {
  if (has(`point.${name}`)) return t(`point.${name}`);
  const numbers = name.match(/\d+/g);
  const pattern = `point.${name.replace(/\d+/g, "N")}`;
  if (numbers && has(pattern)) return t(pattern, { n: numbers[0], m: numbers[1] });
  return fallback || name;
}

// Groups whose values are open-ended names (places, profiles, methods, catalogue classes,
// arguments): a value without a word falls back to the API's own name on purpose.
const OPEN_GROUPS = new Set(["place", "profile", "method", "class", "arg", "metric"]);

// Enumerations from the API (states, severities, roles...) as "group.value" keys. An
// enumeration value without a word is a defect: it is recorded (see `missing`) and shown raw.
export function label(group, value) {
  if (value === null || value === undefined) return "—";
  const key = `${group}.${value}`;
  if (has(key)) return t(key);
  if (!OPEN_GROUPS.has(group)) missing.add(key);
  return String(value);
}
